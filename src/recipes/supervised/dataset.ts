/**
 * SFT data as the recipe consumes it: a {@link SupervisedDataset} (batches of datums by index,
 * reshuffled per epoch) and an optional held-out test set, made by a {@link SupervisedDatasetBuilder}
 * once the model's tokenizer and renderer are known. Ready builders: a conversations JSONL file, a
 * Hugging Face dataset, and rows mapped by a user function.
 */
import { TinkerValidationError } from "../../client/errors.js";
import type { Datum } from "../../client/types/datum.js";
import { ShuffledBatches } from "../../datasets/batching.js";
import {
  type DatumRenderOptions,
  loadConversationFileDatums,
} from "../../datasets/conversation-datums.js";
import { parseConversationRow } from "../../datasets/conversation-file.js";
import { type HubDatasetOptions, loadHubDataset } from "../../datasets/hub.js";
import { seededShuffle } from "../../datasets/prng.js";
import type { Message, Renderer, TrainOnWhat } from "../../renderers/types.js";
import { conversationToDatum, type Reduction } from "../../supervised/datum.js";
import type { Tokenizer } from "../../tokenizers/types.js";

/** Batches of SFT datums: the cookbook's `SupervisedDataset`. */
export interface SupervisedDataset {
  /** Batches per epoch. */
  readonly length: number;
  /** Batch `index` of the current epoch. */
  getBatch(index: number): Datum[] | Promise<Datum[]>;
  /** Use the order of `epoch` (a pure function of the seed and the epoch, for exact resume). */
  setEpoch(epoch: number): void;
}

/** What a builder gets: the run's tokenizer, renderer and seed. */
export interface SupervisedDatasetContext {
  readonly tokenizer: Tokenizer;
  readonly renderer: Renderer;
  readonly seed: number;
}

/** The train batches and the held-out datums (evaluated as `test/nll`, `test/bpb`). */
export interface SupervisedData {
  readonly train: SupervisedDataset;
  readonly test?: readonly Datum[] | undefined;
}

/** Makes the datasets of a run. `describe()` goes into `config.json`. */
export interface SupervisedDatasetBuilder {
  describe(): Record<string, unknown>;
  build(ctx: SupervisedDatasetContext): Promise<SupervisedData>;
}

/** How rows become datums, shared by the ready builders. */
export interface ChatDataOptions {
  /** Datums per batch (the last partial batch is dropped). */
  batchSize: number;
  /** Hold out this many rows (after the seeded shuffle) as the test set. Default 0. */
  testSize?: number;
  /** Truncate each example to this many tokens. */
  maxLength?: number;
  /** Default `all_assistant_messages`. */
  trainOnWhat?: TrainOnWhat;
  /** Default `"mean"`: each example's weights sum to 1. */
  reduction?: Reduction;
}

function renderOptions(o: ChatDataOptions, renderer: Renderer): DatumRenderOptions {
  return {
    renderer,
    ...(o.maxLength !== undefined ? { maxLength: o.maxLength } : {}),
    ...(o.trainOnWhat !== undefined ? { trainOnWhat: o.trainOnWhat } : {}),
    ...(o.reduction !== undefined ? { reduction: o.reduction } : {}),
  };
}

function chatDatum(messages: readonly Message[], r: DatumRenderOptions): Datum {
  return conversationToDatum(
    messages,
    r.renderer,
    r.maxLength,
    r.trainOnWhat,
    r.reduction !== undefined ? { reduction: r.reduction } : {},
  );
}

function describeChat(o: ChatDataOptions): Record<string, unknown> {
  return {
    batchSize: o.batchSize,
    testSize: o.testSize ?? 0,
    maxLength: o.maxLength ?? null,
    trainOnWhat: o.trainOnWhat ?? "all_assistant_messages",
    reduction: o.reduction ?? "mean",
  };
}

/** Datum batches over items mapped lazily, in a seeded order per epoch. */
class MappedBatches<T> implements SupervisedDataset {
  private readonly batches: ShuffledBatches<T>;
  constructor(
    items: readonly T[],
    batchSize: number,
    seed: number,
    private readonly toDatum: (item: T) => Datum,
  ) {
    this.batches = new ShuffledBatches(items, { batchSize, seed });
  }
  get length(): number {
    return this.batches.length;
  }
  setEpoch(epoch: number): void {
    this.batches.setEpoch(epoch);
  }
  getBatch(index: number): Datum[] {
    return this.batches.getBatch(index).map(this.toDatum);
  }
}

/**
 * SFT on a JSONL file of `{"messages": [...]}` rows (the cookbook's `FromConversationFileBuilder`):
 * shuffled with the run's seed, the first `testSize` rows held out.
 */
export function conversationsJsonl(
  path: string,
  options: ChatDataOptions,
): SupervisedDatasetBuilder {
  return {
    describe: () => ({ kind: "conversations_jsonl", path, ...describeChat(options) }),
    async build(ctx) {
      const { train, test } = await loadConversationFileDatums(path, {
        ...renderOptions(options, ctx.renderer),
        batchSize: options.batchSize,
        seed: ctx.seed,
        shuffleSeed: ctx.seed,
        ...(options.testSize !== undefined ? { testSize: options.testSize } : {}),
      });
      return { train, test };
    },
  };
}

/** Rows of any shape turned into chat examples (or datums) by a user function. */
export type RowMapper<R> = (row: R, ctx: SupervisedDatasetContext) => readonly Message[] | Datum;

function isDatum(v: readonly Message[] | Datum): v is Datum {
  return !Array.isArray(v) && typeof v === "object" && v !== null && "modelInput" in v;
}

/**
 * SFT on rows mapped by `map` to a conversation (rendered with the run's renderer) or directly to
 * a datum. `rows` may be a list or a loader. The rows are shuffled with the run's seed, and the
 * first `testSize` held out. `name` identifies the data in `config.json`.
 */
export function mappedRows<R>(
  name: string,
  rows: readonly R[] | (() => Promise<readonly R[]>),
  map: RowMapper<R>,
  options: ChatDataOptions,
): SupervisedDatasetBuilder {
  return {
    describe: () => ({ kind: "mapped_rows", name, ...describeChat(options) }),
    async build(ctx) {
      const all = typeof rows === "function" ? await rows() : rows;
      const testSize = options.testSize ?? 0;
      if (testSize > all.length) {
        throw new TinkerValidationError(
          `testSize ${testSize} is larger than the ${all.length} rows of ${name}`,
          "testSize",
        );
      }
      const render = renderOptions(options, ctx.renderer);
      const toDatum = (row: R): Datum => {
        const mapped = map(row, ctx);
        return isDatum(mapped) ? mapped : chatDatum(mapped, render);
      };
      const shuffled = seededShuffle(all, ctx.seed);
      const test = shuffled.slice(0, testSize).map(toDatum);
      const train = new MappedBatches(
        shuffled.slice(testSize),
        options.batchSize,
        ctx.seed,
        toDatum,
      );
      return { train, test: test.length > 0 ? test : undefined };
    },
  };
}

/** Options of {@link hubConversations}. */
export interface HubConversationsOptions extends ChatDataOptions {
  /** The field holding the messages list. Default `"messages"`. */
  messagesField?: string;
  /** A split to use as the test set instead of holding rows out (e.g. `"test"`). */
  testSplit?: string;
  /** Passed to the hub loader (config, revision, cacheDir, offline, ...). */
  hub?: Omit<HubDatasetOptions, "repo" | "split">;
}

/** SFT on a Hugging Face chat dataset (rows with a messages list), e.g. `HuggingFaceH4/no_robots`. */
export function hubConversations(
  repo: string,
  split: string,
  options: HubConversationsOptions,
): SupervisedDatasetBuilder {
  const field = options.messagesField ?? "messages";
  const toConversation = (row: Record<string, unknown>) =>
    parseConversationRow({ messages: row[field] });
  const inner = mappedRows(
    `${repo}:${split}`,
    async () => (await loadHubDataset({ ...options.hub, repo, split })).rows,
    toConversation,
    options.testSplit !== undefined ? { ...options, testSize: 0 } : options,
  );
  return {
    describe: () => ({
      kind: "hub_conversations",
      repo,
      split,
      testSplit: options.testSplit ?? null,
      messagesField: field,
      ...describeChat(options),
    }),
    async build(ctx) {
      const data = await inner.build(ctx);
      if (options.testSplit === undefined) return data;
      const test = await loadHubDataset({ ...options.hub, repo, split: options.testSplit });
      const render = renderOptions(options, ctx.renderer);
      const testData = test.rows.map((r) => chatDatum(toConversation(r), render));
      return { train: data.train, test: testData };
    },
  };
}
