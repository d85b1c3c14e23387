// The search page of aidocs-server. It talks only to the public API (/v1/search,
// /v1/libraries, /v1/facets, /v1/sections) with the key kept in this tab's session storage. Text from
// the index is only ever set as text (textContent, text nodes and <mark> elements): page
// content is never parsed as HTML. No inline script or style: the page's
// Content-Security-Policy allows none.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var api = aidocs.api, key = aidocs.key, node = aidocs.node, say = aidocs.say;
  var q = $('q'), library = $('library'), version = $('version');
  var results = $('results'), status = $('status'), facetsBox = $('facets');
  var FACETS = ['language', 'framework', 'doc_type'];
  var filters = {};
  var libs = [];
  var timer = null, seq = 0, searches = 0;

  function explain(e) {
    if (e.status === 401) {
      $('key-box').open = true;
      return key() ? 'The API key was not accepted: ' + e.message : 'This server needs an API key: enter it under “API key”.';
    }
    if (e.status === 403) return 'This API key may not search here: ' + e.message;
    if (e.status === 429) return 'Too many searches right now; try again' + (e.retry ? ' in ' + e.retry + ' s.' : ' shortly.');
    if (e.status === 503) return 'Search is unavailable for the moment: ' + e.message;
    return 'Search failed: ' + e.message;
  }

  // Only web, file and same-site links are followed; anything else (javascript:, data:) is not a link.
  function safeHref(url) {
    return /^(https?:|file:|\/(?!\/))/i.test(url || '') ? url : '#';
  }

  function pageOf(url) {
    var i = url.indexOf('#');
    return i < 0 ? url : url.slice(0, i);
  }

  // Words too common to be worth marking.
  var STOP = ['a', 'an', 'and', 'are', 'as', 'at', 'be', 'by', 'can', 'do', 'does', 'for', 'from', 'how', 'i', 'in', 'into', 'is', 'it', 'of', 'on', 'or', 'the', 'to', 'what', 'when', 'where', 'which', 'why', 'with', 'you'];

  function terms(text) {
    var seen = {};
    return text.toLowerCase().split(/[^\p{L}\p{N}_]+/u).filter(function (t) {
      if (t.length < 2 || seen[t] || STOP.indexOf(t) >= 0) return false;
      seen[t] = true;
      return true;
    });
  }

  // `text` into `el` as text nodes, the query's terms wrapped in <mark> where a word starts
  // with them (`task` marks `tasks`, never the middle of a word).
  function highlight(el, text, words) {
    if (!words.length) { el.textContent = text; return; }
    var escaped = words.map(function (w) { return w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); });
    var re = new RegExp('(?<![\\p{L}\\p{N}_])(?:' + escaped.join('|') + ')', 'giu');
    var last = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) el.appendChild(document.createTextNode(text.slice(last, m.index)));
      el.appendChild(node('mark', null, m[0]));
      last = m.index + m[0].length;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < text.length) el.appendChild(document.createTextNode(text.slice(last)));
  }

  function readUrl() {
    var p = new URLSearchParams(location.search);
    q.value = p.get('q') || '';
    filters = {};
    FACETS.forEach(function (f) { if (p.get(f)) filters[f] = p.get(f); });
    return { collection: p.get('collection') || '', version: p.get('version') || '' };
  }

  function writeUrl() {
    var p = new URLSearchParams();
    if (q.value.trim()) p.set('q', q.value.trim());
    if (library.value) p.set('collection', library.value);
    if (version.value) p.set('version', version.value);
    FACETS.forEach(function (f) { if (filters[f]) p.set(f, filters[f]); });
    var url = '/' + (p.toString() ? '?' + p.toString() : '');
    if (url !== location.pathname + location.search) history.replaceState(null, '', url);
  }

  function fillVersions(name, wanted) {
    var lib = libs.filter(function (l) { return l.name === name || l.aliases.indexOf(name) >= 0; })[0];
    var current = wanted !== undefined ? wanted : version.value;
    version.replaceChildren(node('option', null, 'Newest version'));
    version.firstChild.value = '';
    (lib ? lib.versions.slice().reverse() : []).forEach(function (v) {
      var o = node('option', null, v);
      o.value = v;
      version.appendChild(o);
    });
    if (current && !Array.prototype.some.call(version.options, function (o) { return o.value === current; })) {
      var o = node('option', null, current);
      o.value = current;
      version.appendChild(o);
    }
    version.value = current || '';
  }

  function loadLibraries(wanted) {
    return api('GET', '/v1/libraries').then(function (r) {
      libs = r.libraries || [];
      library.replaceChildren(node('option', null, 'Default library'));
      library.firstChild.value = '';
      libs.forEach(function (l) {
        var o = node('option', null, l.name + ' (' + l.pages + ' pages)');
        o.value = l.name;
        library.appendChild(o);
      });
      if (wanted.collection) {
        if (!libs.some(function (l) { return l.name === wanted.collection; })) {
          var o = node('option', null, wanted.collection);
          o.value = wanted.collection;
          library.appendChild(o);
        }
        library.value = wanted.collection;
      }
      fillVersions(library.value || (libs[0] && libs.length === 1 ? libs[0].name : ''), wanted.version);
      return true;
    }).catch(function (e) {
      say(explain(e), true);
      return false;
    });
  }

  // Facet values come from the whole collection (GET /v1/facets: every value with its chunk
  // count), fetched once per collection, not from the twenty hits on screen.
  var facetCache = {};
  function loadFacets(name) {
    var k = name || '';
    if (!facetCache[k]) {
      facetCache[k] = api('GET', '/v1/facets' + (name ? '?collection=' + encodeURIComponent(name) : '')).then(function (r) {
        return r.facets || {};
      }).catch(function () {
        delete facetCache[k];
        return {};
      });
    }
    return facetCache[k];
  }

  function renderFacets(facets) {
    facetsBox.replaceChildren();
    FACETS.forEach(function (f) {
      var values = (facets[f] || []).slice();
      if (filters[f] && !values.some(function (c) { return c.value === filters[f]; })) values.push({ value: filters[f], count: 0 });
      values.forEach(function (c) {
        var v = c.value, on = filters[f] === v;
        var b = node('button', 'facet', f.replace('_', ' ') + ': ' + v + (on ? '' : ' (' + c.count + ')'));
        b.type = 'button';
        b.title = c.count + (c.count === 1 ? ' section' : ' sections') + ' in this library';
        b.setAttribute('aria-pressed', on ? 'true' : 'false');
        b.dataset.field = f;
        b.dataset.value = v;
        b.dataset.count = String(c.count);
        b.addEventListener('click', function () {
          if (on) delete filters[f]; else filters[f] = v;
          search();
        });
        facetsBox.appendChild(b);
      });
    });
  }

  function render(r, text, facets) {
    var words = terms(text);
    var pages = [];
    var byPage = {};
    r.hits.forEach(function (h) {
      var k = (h.collection || r.collection) + ' ' + pageOf(h.url);
      if (!byPage[k]) { byPage[k] = { url: pageOf(h.url), hits: [] }; pages.push(byPage[k]); }
      byPage[k].hits.push(h);
    });
    var out = [];
    pages.forEach(function (page) {
      var first = page.hits[0];
      var art = node('article', 'page');
      var h2 = node('h2');
      var a = node('a', null, first.title || first.path);
      a.href = safeHref(page.url);
      h2.appendChild(a);
      var badges = node('span', 'badges');
      badges.appendChild(node('span', 'badge library', first.collection || r.collection));
      if (first.metadata && first.metadata.version) badges.appendChild(node('span', 'badge version', 'v' + first.metadata.version));
      h2.appendChild(badges);
      art.appendChild(h2);
      var ul = node('ul', 'hits');
      page.hits.forEach(function (h) {
        var li = node('li', 'hit');
        var link = node('a', 'section');
        link.href = safeHref(h.url);
        highlight(link, (h.heading_path && h.heading_path.length ? h.heading_path.join(' › ') : h.title), words);
        li.appendChild(link);
        var p = node('p', 'snippet');
        highlight(p, h.snippet, words);
        li.appendChild(p);
        var read = node('button', 'read', 'Read section');
        read.type = 'button';
        read.setAttribute('aria-label', 'Read section: ' + (h.heading_path || []).join(' › '));
        read.addEventListener('click', function () { openSection(h, h.collection || r.collection, read); });
        li.appendChild(read);
        ul.appendChild(li);
      });
      art.appendChild(ul);
      out.push(art);
    });
    results.replaceChildren.apply(results, out);
    renderFacets(facets);
    if (!version.value && r.collection) fillVersions(library.value || r.collection, '');
  }

  function search() {
    clearTimeout(timer);
    writeUrl();
    var text = q.value.trim();
    var mine = ++seq;
    if (!text) {
      results.replaceChildren();
      facetsBox.replaceChildren();
      say('');
      return Promise.resolve();
    }
    var body = { query: text, limit: 20 };
    if (library.value) body.collection = library.value;
    var filter = {};
    FACETS.forEach(function (f) { if (filters[f]) filter[f] = filters[f]; });
    if (version.value) filter.version = version.value;
    if (Object.keys(filter).length) body.filter = filter;
    say('Searching…');
    var started = performance.now();
    return Promise.all([api('POST', '/v1/search', body), loadFacets(library.value)]).then(function (both) {
      if (mine !== seq) return;
      var r = both[0];
      render(r, text, both[1]);
      var ms = Math.round(performance.now() - started);
      var n = r.hits.length;
      say(n ? n + (n === 1 ? ' result' : ' results') + ' in ' + ms + ' ms' + (r.default_version ? ' (version ' + r.default_version + ')' : '') : 'No results for “' + text + '”.');
      searches += 1;
      document.body.dataset.searches = String(searches);
      document.body.dataset.cached = r.cached ? 'true' : 'false';
      if (searches === 1) document.body.dataset.firstResultsMs = String(Math.round(performance.now()));
    }).catch(function (e) {
      if (mine !== seq) return;
      results.replaceChildren();
      facetsBox.replaceChildren();
      say(explain(e), true);
    });
  }

  var reader = $('reader'), readerOpener = null;
  function openSection(hit, lib, opener) {
    readerOpener = opener;
    api('GET', '/v1/sections/' + encodeURIComponent(hit.id) + (lib ? '?library=' + encodeURIComponent(lib) : '')).then(function (s) {
      $('reader-title').textContent = (s.section.heading_path || []).join(' › ') || s.title;
      $('reader-text').textContent = s.section.text;
      $('reader-link').href = safeHref(s.section.url);
      reader.hidden = false;
      $('reader-close').focus();
    }).catch(function (e) { say(explain(e), true); });
  }
  function closeReader() {
    reader.hidden = true;
    if (readerOpener) readerOpener.focus();
  }
  $('reader-close').addEventListener('click', closeReader);

  // Keyboard: `/` focuses the search box; arrows move through the results' section links
  // (Enter follows the focused one); Escape closes the reader, then returns to the box.
  document.addEventListener('keydown', function (e) {
    var active = document.activeElement;
    var typing = active && (active.tagName === 'INPUT' || active.tagName === 'SELECT' || active.tagName === 'TEXTAREA');
    if (e.key === '/' && !typing) {
      e.preventDefault();
      q.focus();
      q.select();
      return;
    }
    if (e.key === 'Escape') {
      if (!reader.hidden) closeReader(); else q.focus();
      return;
    }
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    var links = Array.prototype.slice.call(results.querySelectorAll('a.section'));
    if (!links.length || (typing && active !== q)) return;
    var i = links.indexOf(active);
    if (active === q) i = e.key === 'ArrowDown' ? 0 : -1;
    else if (i < 0) return;
    else i += e.key === 'ArrowDown' ? 1 : -1;
    e.preventDefault();
    if (i < 0) { q.focus(); return; }
    links[Math.min(i, links.length - 1)].focus();
  });

  $('search').addEventListener('submit', function (e) { e.preventDefault(); search(); });
  q.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  library.addEventListener('change', function () {
    fillVersions(library.value, '');
    search();
  });
  version.addEventListener('change', search);

  $('key-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var k = $('key').value.trim();
    aidocs.setKey(k);
    $('key').value = '';
    var wanted = { collection: library.value, version: version.value };
    loadLibraries(wanted).then(function (ok) {
      if (ok) {
        $('key-box').open = false;
        say(key() ? 'API key set for this tab.' : '');
        search();
      }
    });
  });
  $('key-clear').addEventListener('click', function () {
    aidocs.setKey('');
    say('API key forgotten.');
  });

  var wanted = readUrl();
  loadLibraries(wanted).then(function (ok) { if (ok) search(); });
})();
