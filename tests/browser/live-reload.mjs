// Opens a page served by `recipes book serve`, edits the Markdown source of
// that page, and waits for the open page to show the edit by itself (no
// reload from here). Usage: node live-reload.mjs URL PAGE.md
// Run by tests/cli/site.rs; needs `npm ci` here first.
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, source] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", (err) => errors.push(err.message));
// The page opens its live-reload socket as it loads.
const socket = page.waitForEvent("websocket", { timeout: 60000 });
await page.goto(url);
const marker = `Live edit ${Date.now()}`;
let failed = false;
if ((await page.content()).includes(marker)) {
  console.log("FAIL the marker is there before the edit");
  failed = true;
}
// Let the page's websocket connect before the edit: an edit made before
// the server knows the page would go unannounced (a loaded machine is slow
// to get there).
await socket;
await page.waitForTimeout(1000);
const started = Date.now();
const text = readFileSync(source, "utf8");
writeFileSync(source, text.replace(/\n/, `\n\n${marker}\n`));
try {
  // While the page reloads there is no body yet. A generous bound: the
  // rebuild runs beside the other tests (a debug build, a busy machine).
  await page.waitForFunction((m) => document.body?.innerText.includes(m), marker, { timeout: 60000 });
  console.log(`ok   the open page showed the edit after ${Date.now() - started} ms`);
} catch {
  console.log("FAIL the open page did not show the edit within 60 s");
  failed = true;
}
if (errors.length) {
  console.log(`FAIL page errors: ${errors.join(" | ")}`);
  failed = true;
}
await browser.close();
process.exit(failed ? 1 : 0);
