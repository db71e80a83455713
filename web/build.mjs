// Builds the demo page into dist/: the page's own files plus the two npm bundles it loads.
// The stack that serves dist/ adds config.js (the XMPP domains and the focus's address).
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const out = join(here, 'dist');

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
cpSync(join(here, 'src'), out, { recursive: true });
const libJitsiMeet = dirname(require.resolve('@lyno/lib-jitsi-meet/package.json'));
cpSync(join(libJitsiMeet, 'lib-jitsi-meet.min.js'), join(out, 'lib-jitsi-meet.min.js'));
cpSync(require.resolve('jquery/dist/jquery.min.js'), join(out, 'jquery.min.js'));
console.log(`demo page built in ${out}`);
