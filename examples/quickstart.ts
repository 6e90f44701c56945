/**
 * Quick start: fine-tune a LoRA adapter and sample from it.
 *
 * With no TINKER_API_KEY this runs on the embedded local engine (the `tiny-bytes` preset, a small
 * byte-level model, trains in seconds on a CPU). With TINKER_API_KEY set, pass a Tinker model name
 * instead, e.g. `npx tsx examples/quickstart.ts Qwen/Qwen3-4B-Instruct-2507`.
 */
import { ModelInput, makeDatum, ServiceClient } from "tinker-ts";

const baseModel = process.argv[2] ?? "tiny-bytes";
const steps = Number(process.env.QUICKSTART_STEPS ?? 40);

const service = new ServiceClient();
try {
  const training = await service.createLoraTrainingClient(baseModel, { rank: 16 });
  const tokenizer = await training.getTokenizer();

  // One document, learned by next-token prediction: inputs are tokens[:-1], targets tokens[1:].
  const text = "The quick brown fox jumps over the lazy dog. ".repeat(3);
  const tokens = tokenizer.encode(text);
  const datum = makeDatum(ModelInput.fromInts(tokens.slice(0, -1)), {
    target_tokens: tokens.slice(1),
    weights: tokens.slice(1).map(() => 1),
  });

  for (let step = 0; step < steps; step++) {
    // Submit both before awaiting either: they run in the same server cycle.
    const fwdBwd = training.forwardBackward([datum], "cross_entropy");
    const optim = training.optimStep({ learningRate: 2e-3 });
    const [result] = await Promise.all([fwdBwd, optim]);
    const lossPerToken = result.metrics["loss:sum"]! / (tokens.length - 1);
    if (step % 10 === 0 || step === steps - 1) {
      console.log(`step ${String(step).padStart(3)}  loss/token ${lossPerToken.toFixed(4)}`);
    }
  }

  const sampler = await training.saveWeightsAndGetSamplingClient();
  const prompt = ModelInput.fromInts(tokenizer.encode("The quick brown"));
  const { sequences } = await sampler.sample(prompt, 1, { maxTokens: 32, temperature: 0 });
  console.log(`sample: The quick brown${tokenizer.decode(sequences[0]!.tokens)}`);
} finally {
  await service.close();
}
