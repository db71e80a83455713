// The local Tutti stack: Prosody (XMPP, WebSocket, the demo page), one bridge and the focus, all
// on loopback. `scripts/up` runs it from the command line; the browser tests import startStack.
//
// Settings (environment, all optional):
//   TUTTI_DOMAIN              XMPP domain (default localhost); guests log in anonymously at
//                             guest.DOMAIN, rooms live at conference.DOMAIN
//   TUTTI_HTTP_PORT           Prosody's HTTP port: demo page, /xmpp-websocket and BOSH's
//                             /http-bind (default 8080)
//   TUTTI_XMPP_PORT           Prosody's client port (default 5222)
//   TUTTI_BIN_DIR             where the `bridge` and `focus` binaries are (default target/release)
//   TUTTI_RUN_DIR             where configs, data and logs go (default .run/stack)
//   TUTTI_BRIDGE_*, TUTTI_FOCUS_*  passed through to the bridge and the focus (docs/bridge.md,
//                             docs/focus.md), e.g. TUTTI_BRIDGE_MEDIA_ADDRESS (127.0.0.1:10000)
//                             and TUTTI_BRIDGE_ADVERTISED_ADDRESSES (the address browsers reach)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The stack's settings: explicit options, then the environment, then defaults. */
export function stackSettings(options = {}, env = process.env) {
  const domain = options.domain ?? env.TUTTI_DOMAIN ?? 'localhost';
  return {
    domain,
    guestDomain: `guest.${domain}`,
    muc: `conference.${domain}`,
    httpPort: Number(options.httpPort ?? env.TUTTI_HTTP_PORT ?? 8080),
    xmppPort: Number(options.xmppPort ?? env.TUTTI_XMPP_PORT ?? 5222),
    binDir: resolve(options.binDir ?? env.TUTTI_BIN_DIR ?? join(root, 'target', 'release')),
    runDir: resolve(options.runDir ?? env.TUTTI_RUN_DIR ?? join(root, '.run', 'stack')),
    webDir: join(root, 'web', 'dist'),
    // 'inherit': children's logs go to this terminal, prefixed; 'files': to RUN_DIR/*.log.
    logs: options.logs ?? 'inherit',
  };
}

// The one Prosody configuration of the project (tests/harness/prosody.cfg.lua.in), which the
// Rust side (tests/harness/src/prosody.rs) fills too.
const prosodyTemplate = join(root, 'tests', 'harness', 'prosody.cfg.lua.in');

/**
 * Fills the template's placeholders: `{{NAME}}` with values[NAME], which must be given;
 * `{{NAME=default}}` with values[NAME], or `default` when it is not given. A value for a name
 * the template does not have is an error too.
 */
function fillTemplate(template, values, name = prosodyTemplate) {
  const unused = new Set(Object.keys(values));
  const filled = template.replace(/\{\{([A-Z0-9_]+)(?:=([^}]*))?\}\}/g, (_, placeholder, fallback) => {
    unused.delete(placeholder);
    if (Object.hasOwn(values, placeholder)) {
      return String(values[placeholder]);
    }
    if (fallback === undefined) {
      throw new Error(`${name}: no value for ${placeholder}`);
    }
    return fallback;
  });
  if (unused.size) {
    throw new Error(`${name} has no ${[...unused].join(', ')}`);
  }
  return filled;
}

function prosodyConfig(s, address) {
  // Everything else (guests at guest.DOMAIN, rooms open with real JIDs at conference.DOMAIN,
  // plaintext on loopback) is the template's default.
  return fillTemplate(readFileSync(prosodyTemplate, 'utf8'), {
    ...(address ? { ADDRESS: JSON.stringify(address) } : {}),
    WRITER: 'scripts/stack.mjs',
    DIR: s.runDir,
    DOMAIN: s.domain,
    C2S_PORT: s.xmppPort,
    HTTP_PORT: s.httpPort,
    LOG_LEVEL: 'info',
    LOG_TO: `${s.runDir}/prosody.log`,
  });
}

// The other XMPP server of the tests (options.server 'ejabberd'), shared with the Rust side
// (tests/harness/src/ejabberd.rs) as well.
const ejabberdTemplate = join(root, 'tests', 'harness', 'ejabberd.yml.in');

/** `ejabberdctl` arguments for the stack's ejabberd (its node, configuration and directories). */
function ejabberdctl(s, ...args) {
  const dir = join(s.runDir, 'ejabberd');
  return ['--config-dir', dir, '--config', join(dir, 'ejabberd.yml'), '--spool', join(dir, 'spool'),
    '--logs', join(dir, 'logs'), '--node', 'ejabberd@localhost', ...args];
}

/**
 * Writes the stack's ejabberd configuration (from tests/harness/ejabberd.yml.in) under RUN_DIR/
 * ejabberd, gives RUN_DIR to the ejabberd user (ejabberdctl runs ejabberd as it) and starts it.
 */
function startEjabberd(s) {
  const dir = join(s.runDir, 'ejabberd');
  for (const sub of ['spool', 'logs']) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  writeFileSync(join(dir, 'ejabberd.yml'), fillTemplate(readFileSync(ejabberdTemplate, 'utf8'), {
    WRITER: 'scripts/stack.mjs', DIR: s.runDir, DOMAIN: s.domain, C2S_PORT: s.xmppPort, HTTP_PORT: s.httpPort,
  }, ejabberdTemplate));
  writeFileSync(join(dir, 'inetrc'), '{lookup,[file,native]}.\n{file,hosts,"/etc/hosts"}.\n');
  const owned = spawnSync('chown', ['-R', 'ejabberd', s.runDir], { encoding: 'utf8' });
  if (owned.status !== 0) {
    throw new Error(`chown -R ejabberd ${s.runDir}: ${owned.error?.message ?? owned.stderr}`);
  }
  const log = createWriteStream(join(s.runDir, 'ejabberd.log'), { flags: 'a' });
  // Its own process group: ejabberdctl runs the Erlang node through su and sh.
  const child = spawnTied('ejabberdctl', ejabberdctl(s, 'foreground'), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  return child;
}

function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolvePort, reject) => {
    const attempt = () => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolvePort();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) {
          reject(new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`));
        } else {
          setTimeout(attempt, 50);
        }
      });
    };
    attempt();
  });
}

function ensurePortFree(port, setting) {
  return new Promise((resolveFree, reject) => {
    const server = createServer();
    server.once('error', () => reject(new Error(
      `127.0.0.1:${port} is already in use (another Prosody?); choose another port with ${setting}`,
    )));
    server.listen(port, '127.0.0.1', () => server.close(resolveFree));
  });
}

/** Starts a child; resolves with its first stdout line parsed as JSON (its "ready" line). */
function startChild(name, command, args, env, s, timeoutMs) {
  const child = spawnTied(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Appended to: a process started again (restartFocus) logs after its predecessor.
  const logTo = s.logs === 'files' ? createWriteStream(join(s.runDir, `${name}.log`), { flags: 'a' }) : null;
  const emit = (line) => (logTo ? logTo.write(`${line}\n`) : process.stderr.write(`[${name}] ${line}\n`));
  createInterface({ input: child.stderr }).on('line', emit);
  const stdout = createInterface({ input: child.stdout });
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} printed no ready line within ${timeoutMs} ms (see its log)`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? code}) before it was ready (see its log)`));
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${name} (${command}): ${error.message}`));
    });
    let ready = false;
    stdout.on('line', (line) => {
      if (ready) {
        emit(line);
        return;
      }
      ready = true;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      try {
        resolveReady({ child, ready: JSON.parse(line) });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${name}'s ready line is not JSON: ${line}`));
      }
    });
  });
}

// Children run in their own process groups, so that Ctrl-C reaches only this process and the
// stack stops in order (focus, bridge, Prosody). If this process exits first they are killed;
// if it is killed (even with SIGKILL) the kernel kills them: each is started through
// `setpriv --pdeathsig KILL` (util-linux), which asks for a signal when its parent dies.
const running = new Set();
// Set once the stack is being given up (a stop signal during start-up): children started
// after that are stopped at once.
let abandoned = false;
process.once('exit', () => {
  for (const child of running) {
    child.kill('SIGKILL');
  }
});

/** spawn(), detached, the child killed when this process dies (see `running`). */
function spawnTied(command, args, options) {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], { ...options, detached: true });
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (abandoned) {
    child.kill('SIGTERM');
  }
  return child;
}

/** Stops every child still running (SIGTERM, SIGKILL after 5 s): the stack abandoned while it started. */
function stopEverything() {
  abandoned = true;
  return Promise.all([...running].map((child) => stopChild(child)));
}

function stopChild(child, signal = 'SIGTERM', timeoutMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill(signal);
  });
}

// Runs a command (a bridge, or a holder of a browser's host) in a network namespace of its own,
// joined to the stack's by a veth pair: the stack's end `tutti-link$i` (10.77.$i.1/24), the
// command's end `tutti-link$i-b` (10.77.$i.2/24, its default route through the stack's end).
// The command's process makes both (as root: `unshare`, `nsenter`); its namespace and the pair
// go when it exits. Arguments: $1 the link's index, then the command line.
const LINKED_HOST = `set -e
i=$1; shift
ip link set lo up
ip link add "tutti-link$i" type veth peer name "tutti-link$i-b"
ip link set "tutti-link$i" netns "$PPID"
nsenter --net="/proc/$PPID/ns/net" ip addr add "10.77.$i.1/24" dev "tutti-link$i"
nsenter --net="/proc/$PPID/ns/net" ip link set "tutti-link$i" up
ip addr add "10.77.$i.2/24" dev "tutti-link$i-b"
ip link set "tutti-link$i-b" up
ip route add default via "10.77.$i.1"
exec "$@"`;

/** Links of browsers' hosts (`options.hosts`) are numbered from here (bridges' from 0). */
const HOST_LINK_BASE = 100;

/** Runs `tc` with `args`; throws with its error output when it fails. */
function tc(args) {
  const run = spawnSync('tc', args, { encoding: 'utf8' });
  if (run.status !== 0) {
    throw new Error(`tc ${args.join(' ')}: ${run.error?.message ?? run.stderr}`);
  }
  return run.stdout;
}

/**
 * Starts Prosody (ejabberd with `options.server` 'ejabberd': Debian's 23.01, from
 * tests/harness/ejabberd.yml.in, serving the page, the WebSocket and BOSH on the same port), one
 * bridge (or `options.bridges` of them, the focus's pool) and the focus.
 * With `options.linked`, each bridge is a host of its own behind a link that `setLink(i, up)`
 * sets down and up again (a cut cable, to the focus and the browsers), and the control plane
 * speaks mutual TLS (the bridges are off loopback). Needs root then, and a namespace of its own
 * (the browser tests' runner gives it one).
 * With `options.hosts` (a number), that many hosts for browsers, each a network namespace
 * behind a link of its own (`tutti-link100`, 101, …: the stack's end 10.77.100.1, the host's
 * 10.77.100.2, …), whose rate towards the host `shape(h, kbps)` caps; Prosody and the bridge
 * (media, HTTP) then listen on the first link's stack-side address too, where every host
 * reaches them. `hosts[h].netns` is the namespace to run a host's browser in.
 * Linked bridges and hosts reach each other through the stack's namespace, which forwards
 * between its links; `setPath(i, j, up)` cuts only the path between linked bridges i and j (a
 * relay's link) and restores it. `options.focusEnv` adds settings for the focus (e.g.
 * TUTTI_FOCUS_PARTICIPANTS_PER_BRIDGE), as `options.bridgeEnvs[i]` does for bridge i.
 * Resolves with the addresses in use and stop(). Rejects (after stopping whatever started) with
 * a message naming what failed.
 */
export async function startStack(options = {}) {
  const s = stackSettings(options);
  for (const binary of ['bridge', 'focus']) {
    if (!existsSync(join(s.binDir, binary))) {
      throw new Error(`${join(s.binDir, binary)} is missing: build it (cargo build --release)`);
    }
  }
  if (!existsSync(join(s.webDir, 'index.html'))) {
    throw new Error(`${s.webDir} is missing: build the demo page (cd web && npm ci && npm run build)`);
  }
  await ensurePortFree(s.xmppPort, 'TUTTI_XMPP_PORT');
  await ensurePortFree(s.httpPort, 'TUTTI_HTTP_PORT');
  rmSync(s.runDir, { recursive: true, force: true });
  mkdirSync(join(s.runDir, 'prosody-data'), { recursive: true });
  mkdirSync(join(s.runDir, 'certs'), { recursive: true });
  cpSync(s.webDir, join(s.runDir, 'www'), { recursive: true });
  const focusJid = `focus@${s.domain}`;
  writeFileSync(
    join(s.runDir, 'www', 'config.js'),
    `window.TUTTI_CONFIG = ${JSON.stringify({
      domain: s.domain,
      guestDomain: s.guestDomain,
      muc: s.muc,
      // The focus is an account; it serves conference requests at its full JID (docs/focus.md).
      focus: `${focusJid}/focus`,
    })};\n`,
  );
  const hostCount = options.hosts ?? 0;
  // The address hosts reach the stack at: the stack's end of the first host's link.
  const address = hostCount > 0 ? `10.77.${HOST_LINK_BASE}.1` : null;
  const config = join(s.runDir, 'prosody.cfg.lua');
  const focusPassword = randomBytes(12).toString('hex');
  const onEjabberd = options.server === 'ejabberd';
  if (onEjabberd && hostCount > 0) {
    throw new Error('hosts of their own need Prosody: the ejabberd configuration listens on loopback only');
  }
  if (!onEjabberd) {
    writeFileSync(config, prosodyConfig(s, address));
    const registered = spawnSync('prosodyctl', ['--config', config, 'register', 'focus', s.domain, focusPassword], {
      encoding: 'utf8',
    });
    if (registered.status !== 0) {
      throw new Error(`prosodyctl register failed: ${registered.error?.message ?? registered.stderr}`);
    }
  }

  const children = [];
  // Bridges are stopped with SIGINT: at once, without the drain SIGTERM starts (the focus,
  // stopped first, leaves their conferences to whichever focus comes next).
  const bridges = new Set();
  let ejabberd = null;
  const stop = async () => {
    for (const child of children.reverse()) {
      if (child === ejabberd) {
        // The node runs under su and sh: ejabberdctl stops it (waited for: it writes to RUN_DIR
        // until it is down), and its foreground shell exits.
        spawnSync('ejabberdctl', ejabberdctl(s, 'stop'), { encoding: 'utf8' });
        const deadline = Date.now() + 15000;
        while (Date.now() < deadline && spawnSync('ejabberdctl', ejabberdctl(s, 'status')).status === 0) {
          await new Promise((done) => setTimeout(done, 200));
        }
      }
      await stopChild(child, bridges.has(child) ? 'SIGINT' : 'SIGTERM', child === ejabberd ? 15000 : 5000);
      if (child === ejabberd) {
        // The Erlang port mapper the node started as a daemon (in this namespace).
        spawnSync('epmd', ['-kill'], { encoding: 'utf8' });
      }
    }
    children.length = 0;
  };
  const hosts = [];
  try {
    for (let h = 0; h < hostCount; h += 1) {
      const index = HOST_LINK_BASE + h;
      // The namespace lives as long as this holder (stopped last: it was started first).
      const hold = ['sh', '-c', 'echo {}; exec sleep infinity'];
      const args = ['--net', '--', 'sh', '-c', LINKED_HOST, 'sh', String(index), ...hold];
      const holder = await startChild(`host${h}`, 'unshare', args, process.env, s, 15000);
      children.push(holder.child);
      hosts.push({
        link: `tutti-link${index}`,
        address: `10.77.${index}.2`,
        netns: `/proc/${holder.child.pid}/ns/net`,
        url: `http://${address}:${s.httpPort}/`,
      });
    }
    const server = onEjabberd
      ? (ejabberd = startEjabberd(s))
      : spawnTied('prosody', ['--config', config, '-F'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const serverName = onEjabberd ? 'ejabberd' : 'prosody';
    if (!onEjabberd) {
      server.stderr.on('data', (chunk) => process.stderr.write(`[prosody] ${chunk}`));
    }
    children.push(server);
    const serverExit = new Promise((_, reject) => {
      server.once('exit', (code) => reject(new Error(`${serverName} exited (${code}); see ${s.runDir}/${serverName}.log`)));
    });
    serverExit.catch(() => {});
    await Promise.race([
      Promise.all([waitForPort(s.xmppPort, 30000), waitForPort(s.httpPort, 30000)]),
      serverExit,
    ]);
    server.removeAllListeners('exit');
    if (onEjabberd) {
      const registered = spawnSync('ejabberdctl', ejabberdctl(s, 'register', 'focus', s.domain, focusPassword), {
        encoding: 'utf8',
      });
      if (registered.status !== 0) {
        throw new Error(`ejabberdctl register failed: ${registered.error?.message ?? registered.stdout}`);
      }
    }

    if (options.linked || hostCount > 0) {
      // Bridges and hosts each behind a link of their own reach each other (relays between
      // bridges, browsers to bridges) through this namespace: it routes between its links.
      writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
    }
    const listen = address ?? '127.0.0.1';
    const bridgeEnv = {
      TUTTI_BRIDGE_MEDIA_ADDRESS: `${listen}:10000`,
      TUTTI_BRIDGE_GRPC_ADDRESS: '127.0.0.1:10090',
      TUTTI_BRIDGE_HTTP_ADDRESS: `${listen}:10091`,
      RUST_LOG: 'info',
      ...process.env,
    };
    // More settings for bridge i: `options.bridgeEnvs[i]` (a test's, e.g. its drain timeout).
    const extra = (i) => options.bridgeEnvs?.[i] ?? {};
    const host = (i) => (options.linked ? `10.77.${i}.2` : '127.0.0.1');
    let tls = null;
    if (options.linked) {
      const dir = join(s.runDir, 'grpc-certs');
      const hosts = Array.from({ length: options.bridges ?? 1 }, (_, i) => host(i));
      const made = spawnSync(join(root, 'scripts', 'certs'), [dir, ...hosts], { encoding: 'utf8' });
      if (made.status !== 0) {
        throw new Error(`scripts/certs failed: ${made.error?.message ?? made.stderr}`);
      }
      tls = { ca: join(dir, 'ca.pem'), dir };
    }
    // Bridge i (`bridge`, then `bridge1`, `bridge2`, … for a pool) on its own ports.
    const startBridge = (i) => {
      const env = {
        ...bridgeEnv,
        ...(i === 0 ? {} : {
          TUTTI_BRIDGE_BRIDGE_ID: `bridge-${i + 1}`,
          TUTTI_BRIDGE_MEDIA_ADDRESS: `${listen}:${10000 + i}`,
          TUTTI_BRIDGE_GRPC_ADDRESS: `127.0.0.1:${10090 + 10 * i}`,
          TUTTI_BRIDGE_HTTP_ADDRESS: `${listen}:${10091 + 10 * i}`,
        }),
        ...extra(i),
      };
      const name = i === 0 ? 'bridge' : `bridge${i}`;
      if (!tls) {
        return startChild(name, join(s.binDir, 'bridge'), [], env, s, 15000);
      }
      Object.assign(env, {
        TUTTI_BRIDGE_MEDIA_ADDRESS: `${host(i)}:${10000 + i}`,
        TUTTI_BRIDGE_GRPC_ADDRESS: `${host(i)}:${10090 + 10 * i}`,
        TUTTI_BRIDGE_HTTP_ADDRESS: `${host(i)}:${10091 + 10 * i}`,
        TUTTI_BRIDGE_GRPC_TLS_CA: tls.ca,
        TUTTI_BRIDGE_GRPC_TLS_CERT: join(tls.dir, 'bridge.pem'),
        TUTTI_BRIDGE_GRPC_TLS_KEY: join(tls.dir, 'bridge-key.pem'),
      });
      const args = ['--net', '--', 'sh', '-c', LINKED_HOST, 'sh', String(i), join(s.binDir, 'bridge')];
      return startChild(name, 'unshare', args, env, s, 15000);
    };
    const pool = [];
    for (let i = 0; i < (options.bridges ?? 1); i += 1) {
      const started = await startBridge(i);
      children.push(started.child);
      bridges.add(started.child);
      pool.push(started);
    }
    const bridge = pool[0];

    const focusEnv = {
      TUTTI_FOCUS_HTTP_ADDRESS: '127.0.0.1:8888',
      RUST_LOG: 'info',
      ...process.env,
      TUTTI_FOCUS_JID: focusJid,
      TUTTI_FOCUS_PASSWORD: focusPassword,
      TUTTI_FOCUS_XMPP_SERVER: `127.0.0.1:${s.xmppPort}`,
      TUTTI_FOCUS_XMPP_SECURITY: 'plaintext',
      TUTTI_FOCUS_MUC_DOMAIN: s.muc,
      TUTTI_FOCUS_BRIDGE_URL: `http://${bridge.ready.grpc}`,
      ...options.focusEnv,
    };
    if (pool.length > 1) {
      focusEnv.TUTTI_FOCUS_BRIDGE_URLS = pool.map((b) => `http://${b.ready.grpc}`).join(',');
    }
    if (tls) {
      Object.assign(focusEnv, {
        TUTTI_FOCUS_BRIDGE_URL: `https://${bridge.ready.grpc}`,
        TUTTI_FOCUS_BRIDGE_URLS: pool.map((b) => `https://${b.ready.grpc}`).join(','),
        TUTTI_FOCUS_BRIDGE_TLS_CA: tls.ca,
        TUTTI_FOCUS_BRIDGE_TLS_CERT: join(tls.dir, 'focus.pem'),
        TUTTI_FOCUS_BRIDGE_TLS_KEY: join(tls.dir, 'focus-key.pem'),
      });
    }
    const focus = await startChild('focus', join(s.binDir, 'focus'), [], focusEnv, s, 15000);
    children.push(focus.child);

    const stack = {
      settings: s,
      // ejabberd serves the page only under its XMPP host's name (tests/harness/ejabberd.yml.in).
      url: `http://${onEjabberd ? s.domain : '127.0.0.1'}:${s.httpPort}/`,
      xmpp: `127.0.0.1:${s.xmppPort}`,
      bridge: bridge.ready,
      bridges: pool.map((b) => b.ready),
      hosts,
      focus: focus.ready,
      children: {
        [serverName]: server,
        focus: focus.child,
        ...Object.fromEntries(pool.map((b, i) => [i === 0 ? 'bridge' : `bridge${i}`, b.child])),
      },
      stop,
      /** Sets bridge i's link (with `options.linked`) down (`up` false) or up again. */
      setLink(i, up) {
        const set = spawnSync('ip', ['link', 'set', `tutti-link${i}`, up ? 'up' : 'down'], { encoding: 'utf8' });
        if (set.status !== 0) {
          throw new Error(`ip link set tutti-link${i}: ${set.error?.message ?? set.stderr}`);
        }
      },
      /**
       * Cuts the path between linked bridges i and j (`up` false: the stack's namespace, which
       * routes between their links, drops what either sends the other; each still reaches the
       * focus and the browsers) or restores it.
       */
      setPath(i, j, up) {
        if (!options.linked) {
          throw new Error('setPath needs bridges on hosts of their own (options.linked)');
        }
        for (const [from, to] of [[i, j], [j, i]]) {
          const rule = ['rule', up ? 'del' : 'add', 'from', `${host(from)}/32`, 'to', `${host(to)}/32`, 'blackhole'];
          const set = spawnSync('ip', rule, { encoding: 'utf8' });
          if (set.status !== 0) {
            throw new Error(`ip ${rule.join(' ')}: ${set.error?.message ?? set.stderr}`);
          }
        }
      },
      /**
       * Caps what flows towards host h at `kbps` (a token bucket on the stack's end of its link:
       * 4 kB of burst, at most 200 ms of queue, the rest dropped), or lifts the cap (`kbps` null).
       */
      shape(h, kbps) {
        const dev = hosts[h].link;
        if (kbps === null) {
          tc(['qdisc', 'del', 'dev', dev, 'root']);
        } else {
          tc(['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${kbps}kbit`, 'burst', '4kb', 'latency', '200ms']);
        }
      },
      /** What the link towards host h sent and dropped, from its queueing discipline. */
      linkStats(h) {
        const text = tc(['-s', 'qdisc', 'show', 'dev', hosts[h].link]);
        const sent = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(text);
        if (!sent) {
          throw new Error(`tc -s qdisc show dev ${hosts[h].link}: no counters in ${text}`);
        }
        return { bytes: Number(sent[1]), packets: Number(sent[2]), dropped: Number(sent[3]), overlimits: Number(sent[4]) };
      },
      /** Starts the focus again (after it was killed), as the same account on the same bridges. */
      async restartFocus() {
        const again = await startChild('focus', join(s.binDir, 'focus'), [], focusEnv, s, 15000);
        children[children.indexOf(stack.children.focus)] = again.child;
        stack.children.focus = again.child;
        stack.focus = again.ready;
      },
    };
    return stack;
  } catch (error) {
    await stop();
    throw error;
  }
}

async function main() {
  // SIGINT (Ctrl-C), SIGTERM (kill, timeout, service managers) and SIGHUP (the terminal
  // closed) stop the stack in order, at any time, start-up included.
  let stack = null;
  let stopping = false;
  const shutdown = async (exitCode) => {
    if (stopping) {
      return;
    }
    stopping = true;
    console.log('\nstopping…');
    await (stack ? stack.stop() : stopEverything());
    process.exit(exitCode);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => shutdown(0));
  }
  try {
    stack = await startStack();
  } catch (error) {
    if (stopping) {
      return;
    }
    console.error(`scripts/up: ${error.message}`);
    process.exit(1);
  }
  if (stopping) {
    // A signal came while the last child started: stopEverything() has that one too.
    return;
  }
  const { url, xmpp, bridge, focus, settings } = stack;
  console.log(`
Tutti is up.
  demo page      ${url}   (open it in two tabs, same room)
  XMPP           ${xmpp} (domain ${settings.domain}, guests ${settings.guestDomain}, rooms ${settings.muc})
  WebSocket      ws://127.0.0.1:${settings.httpPort}/xmpp-websocket
  BOSH           http://127.0.0.1:${settings.httpPort}/http-bind   (the page with &transport=bosh)
  bridge         media udp ${bridge.media}, gRPC ${bridge.grpc}, metrics http://${bridge.http}/metrics, bridge channels ws://${bridge.http}/colibri-ws/
  focus          ${focus.jid}, metrics http://${focus.http}/metrics
  files and logs ${settings.runDir}
Ctrl-C (or SIGTERM) stops everything.
`);
  for (const [name, child] of Object.entries(stack.children)) {
    child.once('exit', (code, signal) => {
      if (!stopping) {
        console.error(`scripts/up: ${name} exited (${signal ?? code}); stopping the stack`);
        shutdown(1);
      }
    });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
