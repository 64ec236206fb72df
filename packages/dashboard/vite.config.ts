import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// Served by @strata/server under /dashboard/ (hashed files in assets/ are cached for a year).
// `npm run dev -w @strata/dashboard` proxies the API to a service on :3000.
export default defineConfig({
  base: '/dashboard/',
  plugins: [react()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // Vite prints each file's gzip size; scripts/report-size.mjs adds the totals.
    reportCompressedSize: true,
    sourcemap: false,
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:3000' } },
})
