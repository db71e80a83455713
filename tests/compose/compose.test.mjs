// The compose deployment for real (issue 19), inside this test's own network namespace
// (tests/compose/run): dockerd with its data in a temporary directory, the images built from
// deploy/docker/*.Dockerfile on registry-free Debian bases, `docker-compose up`; then
// lib-jitsi-meet in Chromium through the HTTPS front: two participants decode each other through
// a composed bridge, and a third one whose only route is to this namespace's public address
// (so to the front and coturn's published ports, never to a bridge) decodes them and is decoded
// over a TURN relay; Prometheus has every target up and a series for every metric selector of
// the chart's dashboards and alert rules; `--scale bridge=3` adds a bridge the focus and
// Prometheus find; `down` leaves nothing behind, and dockerd is stopped.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, joinPage, launchChromium, reportPages, sleep, sumMetric, waitFor, writeAudio } from '../browser/harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCKER = '/usr/bin/docker';
// This namespace's address on the link to the TURN-only participant's namespace: the "public
// address" the deployment is configured with (the front's and coturn's published ports).
const PUBLIC = '10.99.0.1';
const TURN_ONLY = '10.99.0.2';
const PROJECT = 'tuttie2e';
const chartFiles = resolve(root, process.env.TUTTI_CHART_FILES ?? 'helm/tutti/files');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout.trim();
}

/** Runs a command asynchronously (the test's timers keep running), output to the log. */
function runLogged(command, args, options, log) {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk) => {
      log.write(chunk);
      tail = (tail + chunk).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', fail);
    child.once('exit', (code) => (code === 0 ? done() : fail(new Error(`${command} ${args.join(' ')} exited ${code}:\n${tail}`))));
  });
}

const seconds = (since) => Math.round((Date.now() - since) / 100) / 10;

test('docker-compose: HTTPS front, two bridges, coturn, Prometheus, scaling, down', { timeout: 1500000 }, async () => {
  if (!process.env.TUTTI_TEST_IN_NETNS) {
    throw new Error('the compose test runs inside its own network namespace: use tests/compose/run');
  }
  const bases = resolve(process.env.TUTTI_COMPOSE_BASES ?? join(root, 'target', 'docker', 'bases'));
  const dir = mkdtempSync('/tmp/tutti-compose-');
  const log = createWriteStream(join(dir, 'docker.log'));
  const env = {
    ...process.env,
    DOCKER_HOST: `unix://${dir}/docker.sock`,
    COMPOSE_PROJECT_NAME: PROJECT,
    COMPOSE_HTTP_TIMEOUT: '300',
    TUTTI_PUBLIC_HOST: PUBLIC,
    TUTTI_TLS_DIR: join(dir, 'tls'),
    TUTTI_CHART_FILES: chartFiles,
  };
  if (!existsSync(chartFiles)) {
    // Nothing to load or check; an empty directory keeps Docker from making the missing one.
    console.log(`no ${chartFiles}: Prometheus gets no rules, and no selector is checked`);
    env.TUTTI_CHART_FILES = join(dir, 'chart-files');
    mkdirSync(env.TUTTI_CHART_FILES);
  }
  const compose = (...args) => run('docker-compose', ['-f', join(root, 'docker-compose.yml'), ...args], { env, cwd: root });
  const composeLogged = (...args) => runLogged('docker-compose', ['-f', join(root, 'docker-compose.yml'), ...args], { env, cwd: root }, log);
  const docker = (...args) => run(DOCKER, args, { env });
  const figures = {};
  const cleanups = [];
  let browsers = [];
  const participants = [];
  try {
    // The TURN-only participant's namespace: a veth to this one, and no other route.
    const holder = spawn('unshare', ['-n', 'sleep', 'infinity'], { stdio: 'ignore' });
    cleanups.push(() => holder.kill('SIGKILL'));
    await waitFor('the TURN-only namespace', () => readFileSync(`/proc/${holder.pid}/status`, 'utf8').includes('sleep'), 5000, 20);
    const inTurnOnly = (...args) => run('nsenter', [`--net=/proc/${holder.pid}/ns/net`, ...args]);
    run('ip', ['link', 'add', 'turnonly0', 'type', 'veth', 'peer', 'name', 'turnonly1', 'netns', String(holder.pid)]);
    run('ip', ['addr', 'add', `${PUBLIC}/30`, 'dev', 'turnonly0']);
    run('ip', ['link', 'set', 'turnonly0', 'up']);
    inTurnOnly('ip', 'link', 'set', 'lo', 'up');
    inTurnOnly('ip', 'addr', 'add', `${TURN_ONLY}/30`, 'dev', 'turnonly1');
    inTurnOnly('ip', 'link', 'set', 'turnonly1', 'up');

    // The front's certificate, made here (self-signed for the public address), readable by the
    // images' user (uid 10001).
    const tls = env.TUTTI_TLS_DIR;
    run('mkdir', ['-p', tls]);
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${PUBLIC}`, '-addext', `subjectAltName=IP:${PUBLIC}`,
      '-keyout', join(tls, 'privkey.pem'), '-out', join(tls, 'fullchain.pem')]);
    for (const file of ['privkey.pem', 'fullchain.pem']) {
      chownSync(join(tls, file), 10001, 10001);
    }
    chmodSync(tls, 0o755);

    // dockerd in this namespace, everything it keeps in `dir`.
    const dockerd = spawn('dockerd', ['--iptables=false', '--ip6tables=false', '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'), '--host', env.DOCKER_HOST], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dockerd.stdout.pipe(createWriteStream(join(dir, 'dockerd.log')));
    dockerd.stderr.pipe(createWriteStream(join(dir, 'dockerd.err.log')));
    const dockerdExited = new Promise((done) => dockerd.once('exit', done));
    cleanups.push(async () => {
      dockerd.kill('SIGTERM');
      await Promise.race([dockerdExited, sleep(30000).then(() => dockerd.kill('SIGKILL'))]);
      await dockerdExited;
      // Whatever dockerd left mounted under `dir` (it unmounts its own on a clean stop).
      const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n')
        .map((line) => line.split(' ')[1]).filter((m) => m && m.startsWith(dir)).reverse();
      for (const mount of mounts) {
        spawnSync('umount', ['-l', mount]);
      }
      // The images and containers' files; the logs stay until the test passes.
      rmSync(join(dir, 'data'), { recursive: true, force: true });
      rmSync(join(dir, 'exec'), { recursive: true, force: true });
    });
    let started = Date.now();
    await waitFor('dockerd to answer', () => spawnSync(DOCKER, ['info'], { env }).status === 0, 60000, 250);
    figures.dockerdStartS = seconds(started);

    started = Date.now();
    await runLogged(join(root, 'deploy', 'docker', 'bases'), ['--import-only', bases], { env }, log);
    figures.basesImportS = seconds(started);
    for (const line of readFileSync(join(bases, 'bases.env'), 'utf8').trim().split('\n')) {
      const [name, value] = line.split('=');
      env[name] = value;
    }

    started = Date.now();
    await composeLogged('build');
    figures.buildS = seconds(started);
    figures.imageMB = Object.fromEntries(docker('image', 'ls', '--format', '{{.Repository}} {{.Size}}')
      .split('\n').filter((l) => l.startsWith('tutti/')).map((l) => l.split(' ')));
    for (const image of ['bridge', 'focus', 'prosody', 'front', 'coturn', 'prometheus']) {
      const user = docker('image', 'inspect', '--format', '{{.Config.User}}|{{json .Config.Healthcheck}}', `tutti/${image}`);
      assert.match(user, /^tutti\|\{"Test":\["CMD","health"/, `tutti/${image} runs as tutti and has a health check`);
    }

    const upStarted = Date.now();
    await composeLogged('up', '-d');
    figures.upReturnedS = seconds(upStarted);
    cleanups.unshift(async () => {
      // `down` leaves nothing: no container, volume or network of the project, no port proxy.
      const downStarted = Date.now();
      await composeLogged('down', '--volumes', '--remove-orphans', '--timeout', '20');
      figures.downS = seconds(downStarted);
      // Every service stops on SIGTERM (the call is over, so no bridge has anything to drain);
      // one that ignored it would hold `down` for the 20 s timeout.
      assert.ok(figures.downS < 15, `down took ${figures.downS} s`);
      assert.equal(docker('ps', '-aq'), '', 'no container is left after down');
      assert.equal(docker('volume', 'ls', '-q'), '', 'no volume is left after down -v');
      assert.deepEqual(docker('network', 'ls', '--format', '{{.Name}}').split('\n').sort(), ['bridge', 'host', 'none']);
      const proxies = spawnSync('pgrep', ['-x', 'docker-proxy'], { encoding: 'utf8' }).stdout.trim();
      assert.equal(proxies, '', 'no docker-proxy is left after down');
    });
    const containers = () => JSON.parse(`[${docker('ps', '-a', '--filter', `label=com.docker.compose.project=${PROJECT}`,
      '--format', '{{json .}}').split('\n').filter(Boolean).join(',')}]`);
    const ipOf = (id) => docker('inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id);
    await waitFor('every service healthy (pki completed)', () => {
      const list = containers();
      const pki = list.find((c) => c.Names.includes('_pki_'));
      const services = list.filter((c) => !c.Names.includes('_pki_'));
      return pki && pki.Status.startsWith('Exited (0)') && services.length === 7
        && services.every((c) => c.Status.includes('(healthy)'));
    }, 120000, 500);
    figures.upToHealthyS = seconds(upStarted);
    const bridgeIps = containers().filter((c) => c.Names.includes('_bridge_')).map((c) => ipOf(c.ID));
    assert.equal(bridgeIps.length, 2, 'two bridges');
    const focusIp = ipOf(containers().find((c) => c.Names.includes('_focus_')).ID);
    const focusMetric = async (family) => sumMetric(await (await fetch(`http://${focusIp}:8888/metrics`)).text(), family);
    await waitFor('the focus to see both bridges', async () => (await focusMetric('tutti_focus_bridges_alive')) === 2, 30000);

    // Two participants in this namespace, through the HTTPS front (self-signed: accepted).
    const url = `https://${PUBLIC}/`;
    const args = [...CHROMIUM_ARGS, '--ignore-certificate-errors', `--use-file-for-fake-audio-capture=${writeAudio(dir, 'speech.wav', 'beeps')}`];
    const direct = await launchChromium(args);
    browsers.push(direct);
    const contextOptions = { ignoreHTTPSErrors: true };
    const ada = await joinPage(direct, url, 'composed', 'ada', { contextOptions, joined: participants });
    figures.upToJoinedS = seconds(upStarted);
    const bob = await joinPage(direct, url, 'composed', 'bob', { contextOptions, joined: participants });
    for (const person of [ada, bob]) {
      await person.waitForDecodedVideo(1);
      await person.waitForAudio(1);
    }
    const endpointsOn = async (ip) => sumMetric(await (await fetch(`http://${ip}:10091/metrics`)).text(), 'tutti_bridge_endpoints');
    const callBridge = await waitFor('the call on one composed bridge', async () => {
      for (const ip of bridgeIps) {
        if ((await endpointsOn(ip)) === 2) return ip;
      }
      return null;
    });
    for (const person of [ada, bob]) {
      await waitFor(`${person.name}'s bridge channel (wss through the front) to open`,
        async () => (await person.events('bridge-channel-open')).length > 0);
    }

    // A third participant that can reach only this namespace's public address: the front and
    // coturn, never a bridge. Its media goes over a TURN relay to the bridge's own address.
    assert.notEqual(spawnSync('nsenter', [`--net=/proc/${holder.pid}/ns/net`, 'ip', 'route', 'get', callBridge]).status, 0,
      'no route from the TURN-only namespace to the bridge');
    const wrapper = join(dir, 'chromium-turn-only');
    writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/proc/${holder.pid}/ns/net ${process.env.TUTTI_CHROMIUM ?? '/usr/bin/chromium'} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const turnOnly = await launchChromium(args, wrapper);
    browsers.push(turnOnly);
    // cyd may use TURN over UDP or TCP (the deployment's page allows both), dan only over TCP.
    const cyd = await joinPage(turnOnly, url, 'composed', 'cyd', { contextOptions, joined: participants });
    const dan = await joinPage(turnOnly, url, 'composed', 'dan', { contextOptions, query: { turnudp: '0' }, joined: participants });
    const everyone = ['ada', 'bob', 'cyd', 'dan'];
    for (const person of [ada, bob, cyd, dan]) {
      await person.waitForTiles(everyone.filter((n) => n !== person.name));
      await person.waitForDecodedVideo(3);
      await person.waitForAudio(3);
    }
    const selectedPair = (person) => person.page.evaluate(async () => {
      const report = await window.tutti.conference.getActivePeerConnection().peerconnection.getStats();
      let selected = null;
      report.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) selected = report.get(s.selectedCandidatePairId);
      });
      const local = selected && report.get(selected.localCandidateId);
      const remote = selected && report.get(selected.remoteCandidateId);
      return local && { type: local.candidateType, relayProtocol: local.relayProtocol, url: local.url, remote: remote.address };
    });
    const pairs = { cyd: await selectedPair(cyd), dan: await selectedPair(dan) };
    console.log(`TURN-only participants' candidate pairs: ${JSON.stringify(pairs)}`);
    for (const [name, pair] of Object.entries(pairs)) {
      assert.equal(pair?.type, 'relay', `${name} uses a relayed candidate`);
      assert.equal(pair.remote, callBridge, `${name} is relayed to the bridge container's own address`);
    }
    assert.equal(pairs.dan.relayProtocol, 'tcp', 'dan reaches coturn over TCP');
    assert.equal(await endpointsOn(callBridge), 4);

    // Prometheus: every target up, and a series for every selector of the chart's dashboards and
    // alert rules (read from helm/tutti/files, or TUTTI_CHART_FILES).
    const prometheus = 'http://127.0.0.1:9090';
    const api = async (path) => {
      const body = await (await fetch(`${prometheus}${path}`)).json();
      assert.equal(body.status, 'success', `${path}: ${JSON.stringify(body)}`);
      return body.data;
    };
    await waitFor('Prometheus to scrape every target', async () => {
      const { activeTargets } = await api('/api/v1/targets');
      const jobs = activeTargets.map((t) => t.labels.job).sort().join(',');
      return jobs === 'prometheus,tutti-bridge,tutti-bridge,tutti-focus' && activeTargets.every((t) => t.health === 'up') && activeTargets;
    }, 60000, 1000);
    const up = await api(`/api/v1/query?query=${encodeURIComponent('up')}`);
    assert.equal(up.result.length, 4);
    assert.ok(up.result.every((s) => s.value[1] === '1'), JSON.stringify(up.result));

    const seriesOf = async (selector) => api(`/api/v1/series?match[]=${encodeURIComponent(selector)}&start=${Date.now() / 1000 - 3600}`);
    // The selectors as the deploy checks read them (tests/deploy/promql; a dashboard variable
    // is `.*`, Grafana's "All").
    const selectorsOf = (file) => run('python3', [join(root, 'tests', 'deploy', 'promql'), 'series', file]).split('\n').filter(Boolean);
    const checked = [];
    const missing = [];
    const check = async (where, file) => {
      for (const selector of selectorsOf(file)) {
        checked.push(selector);
        if ((await seriesOf(selector)).length === 0) missing.push(`${where}: ${selector}`);
      }
    };
    // Scrapes (every 5 s) of the call's four endpoints.
    await sleep(6000);
    const dashboards = existsSync(join(chartFiles, 'dashboards'))
      ? readdirSync(join(chartFiles, 'dashboards')).filter((f) => f.endsWith('.json')) : [];
    for (const file of dashboards) {
      await check(file, join(chartFiles, 'dashboards', file));
    }
    const rulesFile = join(chartFiles, 'prometheus-rules.yml');
    let ruleCount = 0;
    if (existsSync(rulesFile)) {
      // The rules as the composed Prometheus loaded them from that file.
      const { groups } = await api('/api/v1/rules');
      assert.ok(groups.length > 0, `Prometheus loaded no rule group from ${rulesFile}`);
      for (const group of groups) {
        for (const rule of group.rules) {
          ruleCount += 1;
          assert.equal(rule.health, 'ok', `rule ${rule.name}: ${rule.lastError}`);
          const loaded = join(dir, 'rule.json');
          writeFileSync(loaded, JSON.stringify({ groups: [{ rules: [{ expr: rule.query }] }] }));
          await check(`rule ${rule.name}`, loaded);
        }
      }
    }
    figures.selectorsChecked = checked.length;
    console.log(`selector check: ${dashboards.length} dashboards, ${ruleCount} rules, ${checked.length} selectors`);
    assert.deepEqual(missing, [], 'every dashboard and alert-rule selector returns series');

    // One more bridge: the focus finds it by the service's DNS name, Prometheus scrapes it.
    const scaleStarted = Date.now();
    await composeLogged('up', '-d', '--no-recreate', '--scale', 'bridge=3');
    await waitFor('the focus to see three bridges', async () => (await focusMetric('tutti_focus_bridges_alive')) === 3, 60000, 500);
    await waitFor('Prometheus to scrape three bridges', async () => {
      const { activeTargets } = await api('/api/v1/targets');
      return activeTargets.filter((t) => t.labels.job === 'tutti-bridge' && t.health === 'up').length === 3;
    }, 60000, 1000);
    figures.scaleToScrapedS = seconds(scaleStarted);
    figures.callAndChecksS = seconds(upStarted);
  } catch (error) {
    await reportPages('compose', participants);
    const logs = spawnSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'logs', '--no-color', '--tail=60'],
      { env, cwd: root, encoding: 'utf8' });
    console.error(`--- docker-compose logs:\n${logs.stdout}${logs.stderr}`);
    console.error(`--- build and up output: ${join(dir, 'docker.log')}`);
    throw error;
  } finally {
    for (const browser of browsers) {
      await browser.close().catch(() => {});
    }
    browsers = [];
    // Every cleanup runs; the first that fails fails the test.
    const failures = [];
    for (const cleanup of cleanups) {
      await Promise.resolve().then(cleanup).catch((error) => failures.push(error));
    }
    console.log(`compose figures: ${JSON.stringify(figures)}`);
    if (failures.length) {
      throw failures[0];
    }
  }
  rmSync(dir, { recursive: true, force: true });
});
