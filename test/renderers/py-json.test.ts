import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { parseToolArguments, pythonStrip } from "../../src/renderers/content.js";
import {
  compactJson,
  PyNumber,
  PyObject,
  parseJson,
  pyFloatRepr,
  pythonJson,
  pythonStr,
} from "../../src/renderers/py-json.js";

// Expected values are what CPython 3.11 prints for json.dumps(json.loads(literal)).
const NUMBERS: Array<[string, string]> = [
  ["1.0", "1.0"],
  ["1E5", "100000.0"],
  ["1e-7", "1e-07"],
  ["1e16", "1e+16"],
  ["1e15", "1000000000000000.0"],
  ["0.0001", "0.0001"],
  ["0.00001", "1e-05"],
  ["-0.0", "-0.0"],
  ["1e400", "Infinity"],
  ["-1e400", "-Infinity"],
  ["1e-400", "0.0"],
  ["123456789012345678901234567890", "123456789012345678901234567890"],
  ["-0", "0"],
  ["2.50", "2.5"],
  ["1.7976931348623157e308", "1.7976931348623157e+308"],
  ["5e-324", "5e-324"],
  ["0.1", "0.1"],
  ["3.0e2", "300.0"],
  ["9007199254740993", "9007199254740993"],
  ["9007199254740993.0", "9007199254740992.0"],
  ["0.30000000000000004", "0.30000000000000004"],
  ["-12.5e-3", "-0.0125"],
  ["1234567890123456789e-3", "1234567890123456.8"],
];

describe("Python's json.loads / json.dumps", () => {
  it.each(NUMBERS)("number %s prints as %s", (literal, python) => {
    expect(pythonJson(parseJson(literal))).toBe(python);
  });

  it("float repr switches to exponent form below 1e-4 and from 1e16, as CPython does", () => {
    expect([1e16, 9999999999999998, 1e-4, 1e-5, 1.5e-7, 1e100, -2.5e22].map(pyFloatRepr)).toEqual([
      "1e+16",
      "9999999999999998.0",
      "0.0001",
      "1e-05",
      "1.5e-07",
      "1e+100",
      "-2.5e+22",
    ]);
  });

  it("objects keep their key order; a repeated key keeps its first place and last value", () => {
    const text =
      '{"b": 1, "10": [1.0, {}, []], "a": {"1": null, "0": true}, "b": "\\u00e9\\n\\ud83d\\ude00\\"", "2": false}';
    expect(pythonJson(parseJson(text))).toBe(
      '{"b": "é\\n😀\\"", "10": [1.0, {}, []], "a": {"1": null, "0": true}, "2": false}',
    );
    expect(compactJson(parseJson(text))).toBe(
      '{"b":"é\\n😀\\"","10":[1.0,{},[]],"a":{"1":null,"0":true},"2":false}',
    );
  });

  it("str() of values as Qwen3.5 parameters print them", () => {
    expect(
      [
        true,
        false,
        null,
        "a\nb",
        new PyNumber("1E2"),
        new PyNumber("7"),
        [new PyNumber("1.0")],
      ].map(pythonStr),
    ).toEqual(["True", "False", "None", "a\nb", "100.0", "7", "[1.0]"]);
    expect(pythonStr(new PyObject([["k", "v"]]))).toBe('{"k": "v"}');
  });

  it.each([
    "{",
    "[1,]",
    "01",
    "1.",
    ".5",
    "NaN",
    '{"a" 1}',
    '"\u0001"',
    "tru",
    "1 2",
    '{"a":1,}',
    "",
  ])("rejects invalid JSON %j", (text) => {
    expect(() => parseJson(text)).toThrow(SyntaxError);
  });

  it("tool arguments must be a JSON object; the error names the call and the field", () => {
    const call = (args: string) => ({
      type: "function" as const,
      function: { name: "f", arguments: args },
    });
    expect(parseToolArguments(call(""), "messages[1]").entries).toEqual([]);
    for (const [args, message] of [
      ["[1]", /must have a JSON object/],
      ["{'a': 1}", /not valid JSON/],
    ] as const) {
      try {
        parseToolArguments(call(args), "messages[1]");
        throw new Error("expected an error");
      } catch (err) {
        expect(err).toBeInstanceOf(TinkerValidationError);
        expect((err as TinkerValidationError).field).toBe("messages[1].toolCalls");
        expect((err as Error).message).toMatch(message);
      }
    }
  });
});

describe("Python's str.strip()", () => {
  it("strips what str.isspace() accepts, unlike String.prototype.trim", () => {
    const s = "\u001c\u001d\u001e\u001f\u0085 \t\n\v\f\r\u00a0\u2028\u3000x\uFEFF";
    expect(pythonStrip(s)).toBe("x\uFEFF");
    expect(s.trim()).not.toBe("x\uFEFF");
    expect(pythonStrip("\uFEFF x \u0085")).toBe("\uFEFF x");
    expect(pythonStrip("\n x \n", "left")).toBe("x \n");
    expect(pythonStrip("\n x \n", "right")).toBe("\n x");
  });
});
