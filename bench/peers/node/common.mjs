// Shared by the Node drivers of the peers: flags, the payload, percentiles,
// a clock, and the result lines in the key=value form bench/run.sh reads.
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
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

// Adds `total` jobs from `clients` concurrent loops, `batch` at a time:
// send(client, n) adds n jobs with client number `client`. Returns the
// milliseconds it took.
export async function enqueueLoops(total, clients, batch, send) {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    for (;;) {
      const first = next;
      next += batch;
      if (first >= total) return;
      await send(client, Math.min(batch, total - first));
    }
  }));
  return performance.now() - start;
}

// W3: starts `script` again as the worker (`--role worker`) in a process of
// its own, waits until it says it is ready, submits `rate` jobs a second for
// `seconds` with submit(), and returns the latencies the worker measured.
export async function latencyRun(scriptUrl, o, submit) {
  const child = fork(fileURLToPath(scriptUrl),
    ['--port', String(o.port), '--role', 'worker', '--rate', String(o.rate), '--seconds', String(o.seconds)]);
  const result = new Promise((resolve) => child.on('message', (m) => { if (m.lat) resolve(m.lat); }));
  await new Promise((resolve) => child.once('message', resolve));  // ready
  await paced(o.rate * o.seconds, o.rate, submit);
  const lat = await result;
  child.send('stop');
  return lat;
}

// Resolves `done` once tick() was called n times; `count` is how many so far.
export function countdown(n) {
  let resolve;
  const c = { count: 0, done: new Promise((r) => { resolve = r; }) };
  c.tick = () => { if (++c.count === n) resolve(); };
  return c;
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
