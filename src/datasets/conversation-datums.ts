import type { Datum } from "../client/types/datum.js";
import type { Renderer, TrainOnWhat } from "../renderers/types.js";
import { conversationToDatum, type Reduction } from "../supervised/datum.js";
import { ShuffledBatches } from "./batching.js";
import {
  type Conversation,
  ConversationFileDataset,
  type ConversationFileOptions,
} from "./conversation-file.js";

/** How conversations become SFT datums (see `conversationToDatum`). */
export interface DatumRenderOptions {
  renderer: Renderer;
  /** Truncate each rendered example to this many tokens. Default: no limit. */
  maxLength?: number;
  /** Default `all_assistant_messages`. */
  trainOnWhat?: TrainOnWhat;
  /** Default `"mean"` (each example's weights sum to 1). */
  reduction?: Reduction;
}

/**
 * Batches of SFT datums over conversations: the cookbook's `SupervisedDataset` shape
 * (`length`, `getBatch(i)`, `setEpoch(epoch)`). Conversations are rendered when their batch is
 * requested; the last partial batch is dropped, and each epoch has its own seeded order.
 */
export class ConversationDatumDataset {
  private readonly batches: ShuffledBatches<Conversation>;
  private readonly render: DatumRenderOptions;

  constructor(
    conversations: readonly Conversation[],
    options: DatumRenderOptions & { batchSize: number; seed?: number },
  ) {
    const { batchSize, seed, ...render } = options;
    this.batches = new ShuffledBatches(conversations, {
      batchSize,
      ...(seed !== undefined ? { seed } : {}),
    });
    this.render = render;
  }

  /** Batches per epoch (`floor(conversations / batchSize)`). */
  get length(): number {
    return this.batches.length;
  }

  /** Use the seeded order of `epoch` for the following {@link getBatch} calls. */
  setEpoch(epoch: number): void {
    this.batches.setEpoch(epoch);
  }

  /** Batch `index` of the current epoch, rendered into datums. */
  getBatch(index: number): Datum[] {
    return this.batches.getBatch(index).map((c) => renderDatum(c, this.render));
  }
}

function renderDatum(conversation: Conversation, o: DatumRenderOptions): Datum {
  return conversationToDatum(
    conversation,
    o.renderer,
    o.maxLength,
    o.trainOnWhat,
    o.reduction !== undefined ? { reduction: o.reduction } : {},
  );
}

/**
 * SFT data from a `{"messages": [...]}` JSONL file, as the cookbook's `FromConversationFileBuilder`:
 * rows shuffled with `shuffleSeed`, the first `testSize` held out and rendered as one test batch.
 */
export async function loadConversationFileDatums(
  path: string,
  options: DatumRenderOptions & ConversationFileOptions & { batchSize: number; seed?: number },
): Promise<{
  train: ConversationDatumDataset;
  test: Datum[] | undefined;
  file: ConversationFileDataset;
}> {
  const { testSize, shuffleSeed, onBadRow, ...rest } = options;
  const file = await ConversationFileDataset.load(path, {
    ...(testSize !== undefined ? { testSize } : {}),
    ...(shuffleSeed !== undefined ? { shuffleSeed } : {}),
    ...(onBadRow !== undefined ? { onBadRow } : {}),
  });
  const train = new ConversationDatumDataset(file.train, rest);
  const test = file.test.length > 0 ? file.test.map((c) => renderDatum(c, rest)) : undefined;
  return { train, test, file };
}
