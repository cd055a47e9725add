// Appended by `recipes book build` to mdBook's search index, whose terms it
// stored without accents: fold the reader's query the same way, and let the
// teasers find the accented words of the page's own text ("reseau" marks
// "réseau"). Runs once, just before mdBook's searcher loads the index.
(function () {
  if (typeof elasticlunr === "undefined" || elasticlunr.recipesFolded) { return; }
  elasticlunr.recipesFolded = true;
  var fold = function (text) {
    return String(text).normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/œ/g, "oe").replace(/Œ/g, "OE").replace(/æ/g, "ae").replace(/Æ/g, "AE");
  };
  var search = elasticlunr.Index.prototype.search;
  elasticlunr.Index.prototype.search = function (query, options) {
    return search.call(this, fold(query), options);
  };
  // mdBook's teaser compares stemmed words of the page with the query.
  var stemmer = elasticlunr.stemmer;
  elasticlunr.stemmer = function (word) { return stemmer(fold(word)); };
})();
