// The operator console of aidocs-server. Everything it shows and does goes through the
// admin API with the admin key kept in this tab's session storage; actions that change
// state ask for confirmation first. Values from the server are only ever set as text. No
// inline script or style: the page's Content-Security-Policy allows none.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var api = aidocs.api, key = aidocs.key, node = aidocs.node, say = aidocs.say;
  var status = $('status');
  var samples = [];
  var loading = null;

  function explain(e) {
    if (e.status === 401) {
      $('key-box').open = true;
      return key() ? 'The key was not accepted: ' + e.message : 'The console needs an admin API key: enter it under “Admin key”.';
    }
    if (e.status === 403) {
      $('key-box').open = true;
      return 'This key is not an admin key: ' + e.message;
    }
    if (e.status === 429) return 'Too many requests; try again shortly.';
    return e.message;
  }

  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = node('td', typeof c === 'number' ? 'num' : null);
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '—' : String(c);
      tr.appendChild(td);
    });
    return tr;
  }

  function fill(id, rows, empty) {
    var body = $(id).tBodies[0];
    if (!rows.length) {
      var tr = document.createElement('tr');
      var td = node('td', null, empty);
      td.colSpan = $(id).tHead.rows[0].cells.length;
      tr.appendChild(td);
      body.replaceChildren(tr);
    } else {
      body.replaceChildren.apply(body, rows);
    }
  }

  function button(label, name, onClick) {
    var b = node('button', null, label);
    b.type = 'button';
    b.dataset.action = name;
    b.addEventListener('click', onClick);
    return b;
  }

  function bytes(n) {
    if (n === undefined || n === null) return '—';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }

  function armText(a) {
    if (!a) return '—';
    return a.requests + ' requests, ' + (100 * a.error_rate).toFixed(1) + ' % errors, p95 ' + (a.p95_ms === null || a.p95_ms === undefined ? '—' : Math.round(a.p95_ms) + ' ms');
  }

  // One A/B variant's figures; against the control, the p-value of the latency and
  // click-through differences, and whether either is significant.
  function variantText(v, control) {
    var ms = function (x) { return x === null || x === undefined ? '—' : Math.round(x) + ' ms'; };
    var pct = function (x) { return (100 * (x || 0)).toFixed(1) + ' %'; };
    var text = v.id + (v.id === control ? ' (control)' : '') + ', weight ' + v.weight;
    if (v.requests === undefined) return text;
    text += ': ' + v.requests + ' requests, mean ' + ms(v.mean_latency_ms) + ', p95 ' + ms(v.p95_ms) + ', ' + pct(v.error_rate) + ' errors, ' + pct(v.zero_result_rate) + ' empty, ' + v.clicks + ' clicks (' + pct(v.click_through_rate) + ')';
    var c = v.vs_control;
    if (c) {
      var p = function (x) { return x.p_value === null || x.p_value === undefined ? 'too little data' : 'p = ' + x.p_value.toFixed(3) + (x.significant ? ', significant' : ''); };
      text += '; vs control: latency ' + p(c.latency) + '; click-through ' + p(c.click_through_rate);
    }
    return text;
  }

  // A state-changing action: asks first, then calls, then says what happened and refreshes.
  function act(question, method, path, body, done) {
    if (!window.confirm(question)) {
      say('Cancelled.');
      return Promise.resolve();
    }
    say('Working…');
    return api(method, path, body).then(function (r) {
      return Promise.resolve(done ? done(r) : 'Done.').then(function (text) {
        say(text);
        return load();
      });
    }).catch(function (e) { say(explain(e), true); });
  }

  // Wait for a job (`?wait=false` answers) to end: its final view.
  function finished(job) {
    if (job.state !== 'running') return Promise.resolve(job);
    return new Promise(function (resolve) { setTimeout(resolve, 300); }).then(function () {
      return api('GET', '/v1/admin/jobs/' + encodeURIComponent(job.id)).then(finished);
    });
  }

  function sync(name) {
    return act('Re-crawl every web source of “' + name + '” now?', 'POST', '/v1/admin/sync?wait=false', { collection: name }, function (r) {
      return finished(r.job).then(function (job) {
        if (job.state !== 'succeeded') return 'The sync of ' + name + ' ' + job.state + ': ' + (job.error ? job.error.message : '');
        var reports = (job.result && job.result.reports) || [];
        var written = reports.reduce(function (n, x) { return n + (x.documents_written || 0); }, 0);
        return 'Synced ' + name + ': ' + reports.length + ' source(s), ' + written + ' documents written.';
      });
    });
  }

  function backup(name) {
    return act('Create a full backup of “' + name + '” now?', 'POST', '/v1/admin/backups?wait=false', { collection: name }, function (r) {
      return finished(r.job).then(function (job) {
        if (job.state !== 'succeeded') return 'The backup of ' + name + ' ' + job.state + ': ' + (job.error ? job.error.message : '');
        return 'Backup ' + job.result.id + ' of ' + name + ' created.';
      });
    });
  }

  function showHealth(h) {
    var pill = $('health');
    pill.textContent = 'health: ' + h.status;
    pill.className = 'pill ' + h.status;
    var deps = $('deps');
    var items = [];
    Object.keys(h.services || {}).sort().forEach(function (name) {
      var s = h.services[name];
      var text = s.status + (s.circuit ? ', circuit ' + s.circuit : '') + (s.latency_ms !== undefined ? ', ' + s.latency_ms + ' ms' : '');
      items.push(node('dt', null, name), node('dd', null, text));
    });
    deps.replaceChildren.apply(deps, items);
    return deps;
  }

  function showCache(c) {
    var deps = $('deps');
    var kinds = c.kinds || {};
    deps.appendChild(node('dt', null, 'cache (' + c.backend + ')'));
    deps.appendChild(node('dd', null, c.health + '; ' + Object.keys(kinds).sort().map(function (k) {
      return k + ' ' + kinds[k].hits + ' hits / ' + kinds[k].misses + ' misses';
    }).join(', ')));
  }

  function load() {
    if (loading) return loading;
    var calls = {
      health: api('GET', '/health/detailed').catch(function (e) { if (e.status === 503 && e.data) return e.data; throw e; }),
      collections: api('GET', '/v1/collections'),
      libraries: api('GET', '/v1/libraries'),
      sources: api('GET', '/v1/admin/sources'),
      jobs: api('GET', '/v1/admin/jobs'),
      canaries: api('GET', '/v1/admin/canaries'),
      ab: api('GET', '/v1/admin/ab'),
      deployments: api('GET', '/deployment/status'),
      backups: api('GET', '/v1/admin/backups'),
      cache: api('GET', '/v1/admin/cache').catch(function () { return null; })
    };
    var names = Object.keys(calls);
    loading = Promise.all(names.map(function (n) { return calls[n]; })).then(function (values) {
      var d = {};
      names.forEach(function (n, i) { d[n] = values[i]; });
      var active = (d.canaries.canaries || []).filter(function (c) { return c.status.state === 'running' || c.status.state === 'paused'; });
      var tests = (d.ab.ab_tests || []).filter(function (t) { return t.status === 'running'; }).slice(0, 10);
      var canaryReports = Promise.all(active.map(function (c) { return api('GET', '/v1/admin/canaries/' + encodeURIComponent(c.id)).catch(function () { return c; }); }));
      var abReports = Promise.all(tests.map(function (t) { return api('GET', '/v1/admin/ab/' + encodeURIComponent(t.id)).catch(function () { return t; }); }));
      return Promise.all([canaryReports, abReports]).then(function (both) {
        d.reports = {};
        both[0].forEach(function (r) { d.reports[r.id] = r; });
        d.abReports = {};
        both[1].forEach(function (r) { d.abReports[r.id] = r; });
        render(d);
        if (!status.classList.contains('error') && status.textContent === 'Loading…') say('');
        document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
      });
    }).catch(function (e) { say(explain(e), true); }).then(function () { loading = null; });
    return loading;
  }

  function render(d) {
    showHealth(d.health);
    if (d.cache) showCache(d.cache);
    var versions = {};
    (d.libraries.libraries || []).forEach(function (l) { versions[l.name] = l.versions; });
    fill('collections', (d.collections.collections || []).map(function (c) {
      var actions = node('span');
      actions.appendChild(button('Sync', 'sync', function () { sync(c.name); }));
      actions.appendChild(button('Back up', 'backup', function () { backup(c.name); }));
      var props = c.properties || {};
      var model = (props.embedding_model || '?') + ' (' + c.dims + ' dims)';
      return row([c.name, (c.aliases || []).join(', '), c.points, (versions[c.name] || []).join(', '), model, props.disk_bytes ? bytes(Number(props.disk_bytes)) : null, actions]);
    }), 'No collections yet.');
    fill('sources', (d.sources.sources || []).map(function (s) {
      var last = s.last_run ? s.last_run.state + ' ' + (s.last_run.finished || s.last_run.started) + ' (' + s.last_run.pages_changed + ' changed)' : 'never';
      return row([s.name, s.collection, s.kind, last + (s.last_error ? ': ' + s.last_error : ''), s.next_run, s.failures_in_a_row]);
    }), 'No scheduled sources ([[sources]] in the config).');
    fill('jobs', (d.jobs.jobs || []).slice(0, 20).map(function (j) {
      var p = j.progress || {};
      var progress = p.files_total ? p.files_done + ' / ' + p.files_total : (p.urls_discovered ? p.urls_discovered + ' URLs' : '');
      return row([j.kind, j.target, j.state + (j.error ? ': ' + j.error.message : ''), progress, j.started_at]);
    }), 'No jobs.');
    fill('canaries', (d.canaries.canaries || []).map(function (c) {
      var r = d.reports[c.id] || c;
      var arms = r.arms || {};
      var actions = node('span');
      var state = c.status.state;
      if (state === 'running') actions.appendChild(button('Pause', 'pause', function () { act('Pause canary “' + c.id + '”?', 'POST', '/v1/admin/canaries/' + encodeURIComponent(c.id) + '/pause', {}, function () { return 'Canary ' + c.id + ' paused.'; }); }));
      if (state === 'paused') actions.appendChild(button('Resume', 'resume', function () { act('Resume canary “' + c.id + '”?', 'POST', '/v1/admin/canaries/' + encodeURIComponent(c.id) + '/resume', {}, function () { return 'Canary ' + c.id + ' resumed.'; }); }));
      if (state === 'running' || state === 'paused') actions.appendChild(button('Roll back', 'rollback', function () { act('Roll canary “' + c.id + '” back? Its alias stays on ' + c.plan.stable + '.', 'POST', '/v1/admin/canaries/' + encodeURIComponent(c.id) + '/rollback', { reason: 'rolled back from the console' }, function () { return 'Canary ' + c.id + ' rolled back.'; }); }));
      var stage = (r.stage_percentage !== undefined ? r.stage_percentage + ' % of traffic, ' : '') + 'stage ' + (c.stage + 1) + ' of ' + c.plan.stages.length;
      return row([c.id, c.plan.alias + ': ' + c.plan.stable + ' → ' + c.plan.canary, state + (c.status.reason ? ' (' + c.status.reason + ')' : ''), stage, armText(arms.stable), armText(arms.canary), actions]);
    }), 'No canaries.');
    var watched = d.deployments.monitoring || {};
    fill('bluegreen', (d.deployments.deployments || []).map(function (x) {
      return row([x.id, x.alias, (x.blue || '(none)') + ' → ' + x.green, x.status + (watched[x.alias] !== undefined || Object.keys(watched).some(function (k) { return watched[k] === x.id; }) ? ', watched' : ''), x.points, new Date(x.finished_ms).toISOString()]);
    }), 'No blue-green deployments yet.');
    var cleanups = d.deployments.cleanups || [];
    $('cleanups').textContent = cleanups.length ? 'Pending cleanups: ' + cleanups.map(function (c) { return c.collection + ' at ' + new Date(c.due_ms).toISOString() + ' (' + c.reason + ')'; }).join('; ') : 'No pending cleanups.';
    fill('ab', (d.ab.ab_tests || []).map(function (t) {
      var r = d.abReports[t.id] || t;
      var figures = node('ul', 'variants');
      (r.variants || []).forEach(function (v) {
        figures.appendChild(node('li', null, variantText(v, r.control)));
      });
      var actions = node('span');
      if (t.status === 'running') actions.appendChild(button('Stop', 'stop', function () { act('Stop A/B test “' + t.id + '”? Traffic on ' + t.alias + ' goes back to the alias.', 'POST', '/v1/admin/ab/' + encodeURIComponent(t.id) + '/stop', {}, function () { return 'A/B test ' + t.id + ' stopped.'; }); }));
      return row([t.id, t.alias, String(t.status), figures, actions]);
    }), 'No A/B tests.');
    fill('backups', (d.backups.backups || []).slice().reverse().map(function (b) {
      var verify = button('Verify', 'verify', function () {
        act('Verify backup ' + b.id + '? Every member is read and checked.', 'POST', '/v1/admin/backups/' + encodeURIComponent(b.id) + '/verify', {}, function (r) { return 'Backup ' + r.id + ' verified: ' + r.points + ' points' + (Array.isArray(r.chain) ? ', a chain of ' + r.chain.length : '') + '.'; });
      });
      return row([b.id, b.collection, b.kind, b.created_at, b.points, bytes(b.archive_bytes), verify]);
    }), 'No backups.');
  }

  // Traffic: sampled from the server's own /metrics every 2 s; requests per second (all
  // routes but /metrics) and the mean latency of /v1/search between two samples.
  function parseMetrics(text) {
    var m = { requests: 0, searchSum: 0, searchCount: 0 };
    text.split('\n').forEach(function (line) {
      if (!line || line[0] === '#') return;
      var value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.indexOf('http_requests_total{') === 0 && line.indexOf('route="/metrics"') < 0) m.requests += value;
      else if (line.indexOf('http_request_duration_seconds_sum{') === 0 && line.indexOf('route="/v1/search"') >= 0) m.searchSum += value;
      else if (line.indexOf('http_request_duration_seconds_count{') === 0 && line.indexOf('route="/v1/search"') >= 0) m.searchCount += value;
    });
    return m;
  }

  function sample() {
    return fetch('/metrics').then(function (r) { return r.text(); }).then(function (text) {
      var now = performance.now();
      var m = parseMetrics(text);
      var prev = samples.length ? samples[samples.length - 1] : null;
      m.at = now;
      if (prev) {
        var dt = (now - prev.at) / 1000;
        m.rate = Math.max(0, (m.requests - prev.requests) / dt);
        var n = m.searchCount - prev.searchCount;
        m.latency = n > 0 ? 1000 * (m.searchSum - prev.searchSum) / n : null;
      }
      samples.push(m);
      if (samples.length > 61) samples.shift();
      draw();
    }).catch(function () {});
  }

  function draw() {
    var pts = samples.filter(function (s) { return s.rate !== undefined; });
    if (!pts.length) return;
    var last = pts[pts.length - 1];
    var lat = pts.filter(function (s) { return s.latency !== null; });
    $('traffic-now').textContent = last.rate.toFixed(1) + ' requests/s now' + (lat.length ? '; mean search latency ' + lat[lat.length - 1].latency.toFixed(1) + ' ms' : '; no searches yet');
    var maxRate = Math.max.apply(null, pts.map(function (s) { return s.rate; }).concat([1]));
    var maxLat = Math.max.apply(null, lat.map(function (s) { return s.latency; }).concat([1]));
    var x = function (i) { return (600 * i / 60).toFixed(1); };
    var line = function (vals, max) {
      return vals.map(function (v, i) { return v === null ? null : x(60 - (vals.length - 1 - i)) + ',' + (115 - 110 * v / max).toFixed(1); }).filter(Boolean).join(' ');
    };
    document.querySelector('#chart .rate').setAttribute('points', line(pts.map(function (s) { return s.rate; }), maxRate));
    document.querySelector('#chart .latency').setAttribute('points', line(pts.map(function (s) { return s.latency; }), maxLat));
    document.body.dataset.samples = String(pts.length);
  }

  $('refresh').addEventListener('click', function () { say('Loading…'); load(); });
  $('key-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var k = $('key').value.trim();
    aidocs.setKey(k);
    $('key').value = '';
    say('Loading…');
    load().then(function () { if (!status.classList.contains('error')) $('key-box').open = false; });
  });
  $('key-clear').addEventListener('click', function () {
    aidocs.setKey('');
    say('Key forgotten.');
  });

  say('Loading…');
  load();
  sample();
  setInterval(sample, 2000);
  setInterval(function () { if (!document.hidden && !status.classList.contains('error')) load(); }, 10000);
})();
