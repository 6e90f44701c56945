/**
 * A recipe run in its own process, for the kill -9 tests:
 *   node --import tsx test/recipes/recipe-child.ts <sft|rl|rl-async> <baseUrl> <logDir>
 */
import { ServiceClient } from "../../src/client/service-client.js";
import { type ResumeKind, resumeRecipe } from "./fixtures.js";

const [kind, baseUrl, logDir] = process.argv.slice(2) as [ResumeKind, string, string];
const service = new ServiceClient({ baseUrl, apiKey: "tml-local", logLevel: "error", env: {} });
const result = await resumeRecipe(kind, service, logDir).run();
await service.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
