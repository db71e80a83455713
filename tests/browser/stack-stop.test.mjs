// The local stack stops cleanly (issue 22): `scripts/up` (which execs `node scripts/stack.mjs`,
// run here directly on the debug binaries) stops Prosody, the bridge and the focus on SIGTERM and
// SIGHUP as on Ctrl-C, in order and with status 0, also while it is still starting; killed with
// SIGKILL, it takes them with it. "Nothing left behind" is checked on every process of the
// machine: none may carry this run's TUTTI_RUN_DIR in its environment (each child inherits it).
// No browser is needed: this file runs with the browser tests because it shares their runner
// (its own network namespace) and their stack.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sleep, waitFor } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every live process (but `except`) whose environment has TUTTI_RUN_DIR=`runDir`. */
function processesOf(runDir, except) {
  const mark = `TUTTI_RUN_DIR=${runDir}`;
  const found = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === except) {
      continue;
    }
    try {
      // A zombie's environment reads empty: it has exited.
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark)) {
        found.push(`${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim()}`);
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** `node scripts/stack.mjs` on the debug binaries, in a run directory of its own. */
function startUp(name) {
  const runDir = mkdtempSync(join(tmpdir(), `tutti-stop-${name}-`));
  const up = spawn(process.execPath, [join(root, 'scripts', 'stack.mjs')], {
    env: {
      ...process.env,
      TUTTI_BIN_DIR: process.env.TUTTI_BIN_DIR ?? join(root, 'target', 'debug'),
      TUTTI_RUN_DIR: runDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  up.stdout.on('data', (chunk) => { output += chunk; });
  up.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((done) => up.once('exit', (code, signal) => done({ code, signal })));
  return {
    up,
    runDir,
    exited,
    output: () => output,
    children: () => processesOf(runDir, up.pid),
    cleanUp: () => rmSync(runDir, { recursive: true, force: true }),
  };
}

/** Sends `signal` and checks that the stack stops in order within `boundMs`, leaving nothing. */
async function stopsCleanly(run, signal, boundMs) {
  const started = Date.now();
  run.up.kill(signal);
  const exit = await Promise.race([run.exited, sleep(boundMs).then(() => null)]);
  const took = Date.now() - started;
  assert.ok(exit, `still running ${boundMs} ms after ${signal}:\n${run.output()}`);
  assert.deepEqual(exit, { code: 0, signal: null }, `${signal}: exited ${JSON.stringify(exit)}:\n${run.output()}`);
  assert.deepEqual(run.children(), [], `left behind after ${signal}`);
  assert.match(run.output(), /stopping…/);
  return took;
}

async function whenUp(run) {
  await waitFor('the stack to be up', () => run.output().includes('Tutti is up.') || run.up.exitCode !== null, 30000, 50);
  assert.match(run.output(), /Tutti is up\./, run.output());
}

for (const signal of ['SIGTERM', 'SIGHUP']) {
  test(`${signal} stops the whole stack as Ctrl-C does`, { timeout: 60000 }, async () => {
    const run = startUp(signal.toLowerCase());
    try {
      await whenUp(run);
      const running = run.children();
      assert.equal(running.length, 3, `Prosody, the bridge and the focus:\n${running.join('\n')}`);
      const took = await stopsCleanly(run, signal, 20000);
      console.log(`${signal}: stack stopped in ${took} ms`);
    } finally {
      run.up.kill('SIGKILL');
      run.cleanUp();
    }
  });
}

test('SIGTERM while the stack is starting stops what has started', { timeout: 60000 }, async () => {
  const run = startUp('starting');
  try {
    // Prosody is up, the focus not yet.
    await waitFor('Prosody to run', () => run.children().some((p) => /prosody --config .* -F/.test(p)), 30000, 10);
    assert.doesNotMatch(run.output(), /Tutti is up\./);
    await stopsCleanly(run, 'SIGTERM', 20000);
  } finally {
    run.up.kill('SIGKILL');
    run.cleanUp();
  }
});

test('killed with SIGKILL, the stack takes its children with it', { timeout: 60000 }, async () => {
  const run = startUp('killed');
  try {
    await whenUp(run);
    run.up.kill('SIGKILL');
    await run.exited;
    await waitFor('no process of the stack', () => run.children().length === 0, 3000, 20)
      .catch(() => assert.fail(`left behind:\n${run.children().join('\n')}`));
  } finally {
    run.cleanUp();
  }
});
