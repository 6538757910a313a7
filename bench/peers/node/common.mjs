// Shared by the Node drivers of the peers: flags, the payload, percentiles,
// a clock, and the result lines in the key=value form bench/run.sh reads.
import os from 'node:os';
import { performance } from 'node:perf_hooks';

export const PAYLOAD = {
  user: 12345, action: 'resize', bucket: 'photos-eu', object: '2026/11/24/img_0001.jpg', w: 640,
};

export function flags(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i + 1 < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in out)) throw new Error(`unknown flag ${argv[i]}`);
    out[key] = typeof out[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return out;
}

// Wall-clock microseconds, comparable across processes on one machine.
export function nowUs() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export function percentile(values, p) {
  if (values.length === 0) return 0;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(p * v.length))];
}

export function cores() {
  return os.cpus().length;
}

export function printRate(label, n, ms) {
  console.log(`${label}`);
  console.log(`  completed=${n} elapsed=${(ms / 1000).toFixed(2)}s rate=${Math.round(n / (ms / 1000))} tasks/s`);
}

export function printLatency(label, lat) {
  console.log(label);
  const f = (x) => x.toFixed(2);
  console.log(`  submit-to-handler-start ms: p50=${f(percentile(lat, 0.5))} p99=${f(percentile(lat, 0.99))} ` +
              `p999=${f(percentile(lat, 0.999))} max=${f(percentile(lat, 1))}`);
}

// Runs `n` jobs through `concurrency` sequential loops of `one(i)`.
export async function loops(n, concurrency, one) {
  let next = 0;
  const loop = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await one(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Paces `total` submissions at `rate` per second from the start time.
export async function paced(total, rate, submit) {
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await submit(i);
  }
}
