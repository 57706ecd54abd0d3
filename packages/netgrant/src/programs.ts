// Every program of the toolkit, by name. The dispatcher and (later) the
// in-process chain runner look programs up here.
import type { Program } from '@netgrant/core';
import { program as fdSend } from '@netgrant/fd-send';
import { program as fdRecv } from '@netgrant/fd-recv';

export const programs: ReadonlyMap<string, Program> = new Map([fdSend, fdRecv].map((p) => [p.name, p]));
