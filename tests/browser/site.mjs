// Drives headless Chromium (Debian's) through the built site served at the
// URL given as first argument. Prints one line per check and exits non-zero
// if any fails. Run by tests/cli/site.rs; needs `npm ci` here first.
import { chromium } from "playwright-core";

const base = new URL(process.argv[2] ?? "http://127.0.0.1:3000/");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};

const browser = await chromium.launch({
  executablePath,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const context = await browser.newContext();
const page = await context.newPage();
const errors = [];
const foreign = [];
page.on("console", (msg) => { if (msg.type() === "error") errors.push(`${page.url()}: ${msg.text()}`); });
page.on("pageerror", (err) => errors.push(`${page.url()}: ${err.message}`));
page.on("request", (req) => {
  const url = new URL(req.url());
  if (!["127.0.0.1", "localhost"].includes(url.hostname) && url.protocol !== "data:") foreign.push(req.url());
});

// Every page of both languages, found from each sidebar.
const pages = new Set();
for (const start of ["index.html", "en/index.html"]) {
  await page.goto(new URL(start, base).href);
  const links = await page.$$eval("#mdbook-sidebar a[href]", (as) => as.map((a) => a.href));
  for (const l of links) if (l.startsWith(base.href) && l.endsWith(".html")) pages.add(l.split("#")[0]);
}
check(pages.size >= 18, `found ${pages.size} pages in the two sidebars`);

for (const url of [...pages].sort()) {
  const response = await page.goto(url);
  const rel = url.slice(base.href.length);
  const english = rel.startsWith("en/");
  check(response.ok(), `${rel} loads`);
  const lang = await page.getAttribute("html", "lang");
  check(lang === (english ? "en" : "fr"), `${rel} has <html lang="${lang}">`);
  // The language switch lands on the twin page.
  const switchLink = page.locator("a.lang-switch-link").first();
  check((await switchLink.count()) === 1, `${rel} has a language switch`);
  await switchLink.click();
  await page.waitForLoadState("load");
  const twin = page.url().slice(base.href.length);
  const expected = english ? rel.slice(3) : `en/${rel}`;
  check(twin === expected, `${rel} switches to ${twin} (want ${expected})`);
  check((await page.getAttribute("html", "lang")) === (english ? "fr" : "en"), `${twin} is in the other language`);
}

// Badges show next to the recipes.
for (const rel of ["conversion.html", "en/conversion.html"]) {
  await page.goto(new URL(rel, base).href);
  const badges = await page.locator(".recipe-badge").count();
  check(badges >= 2, `${rel} shows ${badges} recipe badges`);
  const text = await page.locator(".recipe-badge").first().innerText();
  check(text.includes("recipes run prune-boot-scripts"), `${rel} badge says how to run the recipe`);
}

// French search, typed without accents, finds accented words; the teasers
// show the page's own (accented) text and the header speaks French.
await page.goto(new URL("index.html", base).href);
await page.locator("#mdbook-search-toggle").click();
const bar = page.locator("#mdbook-searchbar");
await bar.pressSequentially("reseau", { delay: 40 });
await page.waitForTimeout(500);
const results = page.locator("#mdbook-searchresults li");
const count = await results.count();
check(count > 0, `French search for "reseau" finds ${count} results`);
const header = (await page.locator("#mdbook-searchresults-header").innerText()).trim();
check(/^\d+ résultats? pour «\u00a0reseau\u00a0»$/.test(header), `French results header: "${header}"`);
const teasers = await page.locator("#mdbook-searchresults .teaser").allInnerTexts();
check(teasers.some((t) => /réseau/i.test(t)), `a teaser shows the accented word: "${teasers[0] ?? ""}"`);
const marked = await page.locator("#mdbook-searchresults .teaser em").allInnerTexts();
check(marked.some((t) => /^réseau/i.test(t)), `teasers mark "réseau" for "reseau" (${marked.slice(0, 3).join(", ")})`);
check(!teasers.some((t) => /controle hote|reseau systeme/.test(t)), "no teaser is a list of folded words");
await bar.fill("");
await bar.pressSequentially("chaine", { delay: 40 });
await page.waitForTimeout(500);
check((await results.count()) > 0, `French search for "chaine" finds results`);
await bar.fill("");
await bar.pressSequentially("introuvablemot", { delay: 40 });
await page.waitForTimeout(500);
const none = (await page.locator("#mdbook-searchresults-header").innerText()).trim();
check(/^Aucun résultat pour «\u00a0introuvablemot\u00a0»$/.test(none), `French empty header: "${none}"`);
const placeholder = await bar.getAttribute("placeholder");
check(/Rechercher/.test(placeholder ?? ""), `French search box says "${placeholder}"`);

// English search works too.
await page.goto(new URL("en/index.html", base).href);
await page.locator("#mdbook-search-toggle").click();
await page.locator("#mdbook-searchbar").pressSequentially("bridge", { delay: 40 });
await page.waitForTimeout(500);
check((await page.locator("#mdbook-searchresults li").count()) > 0, `English search for "bridge" finds results`);
const english = (await page.locator("#mdbook-searchresults-header").innerText()).trim();
check(/search results? for 'bridge'/.test(english), `English results header stays English: "${english}"`);

check(errors.length === 0, `no console errors${errors.length ? ": " + errors.join(" | ") : ""}`);
check(foreign.length === 0, `no request to another host${foreign.length ? ": " + foreign.join(" ") : ""}`);

await browser.close();
if (failures.length) {
  console.log(`${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log("all browser checks passed");
