// Shared SIMD helpers. Compiled twice: with relaxed SIMD (fused multiply-add) and without.

/** a * b + c, fused when the relaxed-SIMD build is compiled. */
@inline
export function fma4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Horizontal sum of four float lanes. */
@inline
export function hsum4(v: v128): f32 {
  return (
    f32x4.extract_lane(v, 0) +
    f32x4.extract_lane(v, 1) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3))
  );
}

/** Horizontal max of four float lanes. */
@inline
export function hmax4(v: v128): f32 {
  const a = f32x4.extract_lane(v, 0);
  const b = f32x4.extract_lane(v, 1);
  const c = f32x4.extract_lane(v, 2);
  const d = f32x4.extract_lane(v, 3);
  const ab = a > b ? a : b;
  const cd = c > d ? c : d;
  return ab > cd ? ab : cd;
}

// exp(x) for four lanes: Cody-Waite range reduction x = n ln2 + r, a degree-6 polynomial for e^r on
// |r| <= ln2/2 (Cephes coefficients, ~2 ulp), and 2^n built in the exponent bits. Inputs are
// clamped to [-87.3, 88.7] so 2^n stays a normal float; below the clamp the result is ~1e-38 not 0.
// Written for x86 lowering: pmin/pmax are single instructions (min/max are not, for NaN rules), and
// n is rounded with the 1.5*2^23 trick, whose low mantissa bits are n itself (no float->int convert).
@inline
export function exp4(x0: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(88.7)), f32x4.splat(-87.3));
  const shifter = f32x4.splat(12582912.0);
  const t = fma4(x, f32x4.splat(1.44269504088896341), shifter);
  const n = f32x4.sub(t, shifter);
  let r = fma4(n, f32x4.splat(-0.693359375), x);
  r = fma4(n, f32x4.splat(2.12194440e-4), r);
  let y = f32x4.splat(1.9875691500e-4);
  y = fma4(y, r, f32x4.splat(1.3981999507e-3));
  y = fma4(y, r, f32x4.splat(8.3334519073e-3));
  y = fma4(y, r, f32x4.splat(4.1665795894e-2));
  y = fma4(y, r, f32x4.splat(1.6666665459e-1));
  y = fma4(y, r, f32x4.splat(5.0000001201e-1));
  y = fma4(y, f32x4.mul(r, r), f32x4.add(r, f32x4.splat(1.0)));
  const e = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return f32x4.mul(y, e);
}

/** Scalar exp through the same polynomial (lane 0), so scalar tails match the vector body. */
@inline
export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}
