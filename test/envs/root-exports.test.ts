import { describe, expect, it } from "vitest";
import * as root from "../../src/index.js";

describe("package root exports", () => {
  it("exports the grading functions with the documented signatures", () => {
    expect(root.extractBoxed("a \\boxed{1} b \\boxed{2}")).toBe("2");
    expect(root.extractBoxed("none")).toBeNull();
    expect(root.extractGsm8kFinalAnswer("work\n#### 1,000")).toBe("1000");
    expect(root.gradeAnswer("1,000", "1000")).toBe(true);
    expect(root.gradeAnswer("999", "1000")).toBe(false);
  });
  it("exports the datasets and envs APIs", () => {
    const exported = [
      root.Gsm8k,
      root.loadHubDataset,
      root.readJsonlStream,
      root.ConversationFileDataset,
      root.ShuffledBatches,
      root.Prng,
      root.ProblemEnv,
      root.ProblemGroupBuilder,
      root.Gsm8kEnv,
      root.Gsm8kDatasetBuilder,
      root.ArithmeticEnv,
      root.TrajectoryGroup,
      root.rolloutGroup,
    ];
    for (const value of exported) expect(typeof value).toBe("function");
  });
});
