// A real browser for page tests: Debian's chromium driven by puppeteer-core (no browser download), launched with
// a fresh profile and no background traffic. Collects console errors, page errors and failed requests so a test
// can assert a page loaded cleanly.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import sharp from 'sharp';
import { CHROMIUM } from './system-tools.js';

export interface BrowserSession {
  browser: Browser;
  close: () => Promise<void>;
}

export async function launchBrowser(extraArgs: string[] = []): Promise<BrowserSession> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'mlctl-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', `--user-data-dir=${profile}`, '--disable-dev-shm-usage', ...extraArgs],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export interface PageProblems {
  console: string[];
  pageErrors: string[];
  failedRequests: string[];
  /** Every URL the page requested. */
  requests: string[];
}

/** A new page that records console errors, uncaught errors and failed requests. */
export async function watchedPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<{ page: Page; problems: PageProblems }> {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  const problems: PageProblems = { console: [], pageErrors: [], failedRequests: [], requests: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.pageErrors.push(String((e as Error).message ?? e)));
  page.on('request', (r) => problems.requests.push(r.url()));
  page.on('requestfailed', (r) => problems.failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
  return { page, problems };
}

/** Standard deviation of a PNG's grey levels: ~0 for a blank (single-colour) image. */
export async function pngSpread(png: Uint8Array): Promise<{ width: number; height: number; stdev: number }> {
  const img = sharp(png);
  const meta = await img.metadata();
  const stats = await img.greyscale().stats();
  return { width: meta.width!, height: meta.height!, stdev: stats.channels[0]!.stdev };
}
