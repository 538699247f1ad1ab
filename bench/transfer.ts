/** Large bodies through one latchkey process: throughput and how much its memory grew. */
import { request } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';

const MiB = 1024 * 1024;

/** Resident memory of a process, in MiB: now (VmRSS) and the peak since the last reset (VmHWM). */
export function rss(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** Resets the peak so the next reading is this transfer's (Linux clear_refs 5); false when not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface TransferResult {
  mibPerSecond: number;
  rssGrowthMiB: number;
  status: number;
}

/**
 * Streams `bytes` up (POST …/upload) or down (GET …/download?bytes=) through the
 * proxy, watching the proxy's memory; the peak is read from VmHWM, or sampled
 * every 20 ms where the peak cannot be reset.
 */
export async function transfer(direction: 'upload' | 'download', url: string, headers: Record<string, string>, bytes: number, pid: number): Promise<TransferResult> {
  const before = rss(pid).now;
  const hwm = resetPeak(pid);
  let sampled = before;
  const sampler = setInterval(() => (sampled = Math.max(sampled, rss(pid).now)), 20);
  const started = performance.now();
  const status = await new Promise<number>((resolve, reject) => {
    const target = direction === 'upload' ? `${url}/upload` : `${url}/download?bytes=${bytes}`;
    const req = request(
      target,
      { method: direction === 'upload' ? 'POST' : 'GET', headers: direction === 'upload' ? { ...headers, 'content-length': String(bytes) } : headers },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (direction === 'download') return void req.end();
    const chunk = Buffer.alloc(256 * 1024, 97);
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  const peak = hwm ? rss(pid).peak : Math.max(sampled, rss(pid).now);
  return { mibPerSecond: bytes / MiB / seconds, rssGrowthMiB: Math.max(0, peak - before), status };
}
