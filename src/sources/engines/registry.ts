/**
 * @module Engine kind -> profile, one entry per file in this folder (alphabetical). The kinds are the
 * ENGINE_KINDS of config/tokenscaler-spec.ts; the Record type makes a missing profile a type error.
 */
import { ENGINE_KINDS, type EngineKind } from '../../config/tokenscaler-spec.ts';
import { InvalidInputError } from '../../errors.ts';
import type { EngineProfile } from '../engine-profile.ts';
import { genericProfile } from './generic.ts';
import { sglangProfile } from './sglang.ts';
import { tgiProfile } from './tgi.ts';
import { tokenscalerGatewayProfile } from './tokenscaler-gateway.ts';
import { trtllmProfile } from './trtllm.ts';
import { vllmProfile } from './vllm.ts';

const PROFILES: Readonly<Record<EngineKind, EngineProfile>> = {
  generic: genericProfile,
  sglang: sglangProfile,
  tgi: tgiProfile,
  'tokenscaler-gateway': tokenscalerGatewayProfile,
  trtllm: trtllmProfile,
  vllm: vllmProfile,
};

export function engineProfile(kind: EngineKind): EngineProfile {
  return PROFILES[kind];
}

/** Looks up a kind typed by a person; `field` names where it came from (`--engine`, `engine.kind`). */
export function requireEngineProfile(kind: string, field: string): EngineProfile {
  if (!(ENGINE_KINDS as readonly string[]).includes(kind)) {
    throw new InvalidInputError(
      field,
      `unknown engine kind ${JSON.stringify(kind)}; allowed: ${ENGINE_KINDS.join(', ')}`,
    );
  }
  return PROFILES[kind as EngineKind];
}
