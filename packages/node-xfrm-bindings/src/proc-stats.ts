import { readFile } from 'node:fs/promises';
import { XfrmDecodeError } from './errors.js';

/**
 * Counters from /proc/net/xfrm_stat (CONFIG_XFRM_STATISTICS), keyed by their kernel names
 * (`XfrmInNoStates`, `XfrmOutPolBlock`, ...). Kernels add counters over time, so every line is kept.
 */
export type XfrmProcStats = Record<string, number>;

/**
 * Parses the text of /proc/net/xfrm_stat: one `Name<whitespace>value` per line.
 * Throws XfrmDecodeError naming the first malformed line.
 */
export function parseXfrmStat(text: string): XfrmProcStats {
  const out: XfrmProcStats = {};
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const m = /^(\w+)\s+(\d+)$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined) {
      throw new XfrmDecodeError('/proc/net/xfrm_stat', `line ${i + 1} is not "Name value": ${JSON.stringify(raw)}`);
    }
    out[m[1]] = Number(m[2]);
  });
  return out;
}

/**
 * Reads and parses xfrm_stat. The file shows the namespace of the reading process, so for another
 * namespace pass `/proc/<pid>/net/xfrm_stat` of a process living there.
 */
export async function readXfrmStat(path = '/proc/net/xfrm_stat'): Promise<XfrmProcStats> {
  return parseXfrmStat(await readFile(path, 'utf8'));
}
