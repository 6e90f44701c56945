/**
 * The public surface of each package entry, as a checked-in report: every exported name with its
 * kind, sorted. A change of the surface (a new export, a removed or renamed one) changes the
 * report, so it shows in review. After a deliberate change, regenerate the reports with
 *
 *   npm run api:update
 *
 * (vitest -u on this file) and commit test/package/api/*.api.txt with the change.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const ENTRIES = {
  "tinker-ts": "src/index.ts",
  "tinker-ts/local": "src/local/index.ts",
} as const;

function kindOf(symbol: ts.Symbol, checker: ts.TypeChecker): string {
  const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  const f = target.flags;
  if (f & ts.SymbolFlags.Class) return "class";
  if (f & ts.SymbolFlags.Function) return "function";
  if (f & ts.SymbolFlags.Enum) return "enum";
  if (f & ts.SymbolFlags.Variable) return "const";
  if (f & ts.SymbolFlags.ValueModule) return "namespace";
  if (f & ts.SymbolFlags.Interface) return "interface";
  if (f & ts.SymbolFlags.TypeAlias) return "type";
  return "other";
}

function surfaces(): Record<keyof typeof ENTRIES, string[]> {
  const files = Object.values(ENTRIES).map((f) => join(ROOT, f));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  });
  const checker = program.getTypeChecker();
  const out = {} as Record<keyof typeof ENTRIES, string[]>;
  for (const [entry, file] of Object.entries(ENTRIES) as Array<[keyof typeof ENTRIES, string]>) {
    const source = program.getSourceFile(join(ROOT, file));
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`cannot read the exports of ${file}`);
    out[entry] = checker
      .getExportsOfModule(moduleSymbol)
      .map((s) => `${kindOf(s, checker)} ${s.getName()}`)
      .sort((a, b) => (a.split(" ")[1]! < b.split(" ")[1]! ? -1 : 1));
  }
  return out;
}

describe("public API surface", () => {
  const api = surfaces();

  it.each(Object.keys(ENTRIES) as Array<keyof typeof ENTRIES>)(
    "%s matches its checked-in report",
    async (entry) => {
      const file = `api/${entry.replace("/", "-")}.api.txt`;
      await expect(`${api[entry].join("\n")}\n`).toMatchFileSnapshot(file);
    },
  );

  it("keeps the engine and server out of the root entry", () => {
    const root = new Set(api["tinker-ts"].map((l) => l.split(" ")[1]));
    for (const internal of [
      "Transformer",
      "EngineCore",
      "createKernels",
      "createJsKernels",
      "LoraAdapter",
      "initRandomWeights",
      "readSafetensors",
      "startLocalServer",
      "createLocalEngine",
      "listPresets",
    ]) {
      expect(root.has(internal), internal).toBe(false);
    }
    const local = new Set(api["tinker-ts/local"].map((l) => l.split(" ")[1]));
    for (const name of ["startLocalServer", "createLocalEngine", "listPresets", "getPreset"]) {
      expect(local.has(name), name).toBe(true);
    }
    for (const internal of ["Transformer", "EngineCore", "createKernels", "LoraAdapter"]) {
      expect(local.has(internal), internal).toBe(false);
    }
  });
});
