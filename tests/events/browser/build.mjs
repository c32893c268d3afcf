// Bundles entry.js (with @segment/analytics-next) into one browser file, dist/tracking.js.
// Run through `npm run build` (scripts/ensure-browser-tools does it).
import { build } from 'esbuild'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

await build({
  entryPoints: [join(here, 'entry.js')],
  outfile: join(here, 'dist', 'tracking.js'),
  bundle: true, // dynamic import() chunks are inlined: nothing is loaded from a CDN at run time
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  define: { 'process.env.NODE_ENV': '"production"' },
  sourcemap: false,
  minify: false,
  logLevel: 'warning',
})
