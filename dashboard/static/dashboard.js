/* The dashboard page: three views fed by the JSON routes every 1.5 s; no reload, nothing from elsewhere. */
(function () {
  'use strict';

  var POLL_MS = 1500;
  var COLORS = ['#2b6cb0', '#2f855a', '#c05621', '#6b46c1', '#b83280', '#2c7a7b', '#975a16', '#4a5568',
                '#e53e3e', '#38a169'];
  var STATUS_TEXT = {
    approved: 'Approved', declined_model: 'Declined by the model', declined_policy: 'Declined by policy',
    dead_lettered: 'Dead-lettered', not_seen: 'Not seen: in flight or not published'
  };
  var charts = {};
  var current = 'pipeline';
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function fmtInt(n) { return (n === null || n === undefined) ? '–' : Number(n).toLocaleString('en-US'); }
  function fmtRate(n) { return (n === null || n === undefined) ? '–' : Number(n).toFixed(1); }
  function fmtPct(x) { return (x === null || x === undefined) ? '–' : (100 * x).toFixed(1) + ' %'; }
  function fmtSeconds(s) {
    if (s === null || s === undefined) { return '–'; }
    if (s < 1) { return Math.round(s * 1000) + ' ms'; }
    if (s < 120) { return s.toFixed(2) + ' s'; }
    return Math.round(s / 60) + ' min';
  }
  function fmtTime(ms) {
    if (ms === null || ms === undefined) { return '–'; }
    return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
  }
  function fmtDate(ms) {
    if (ms === null || ms === undefined) { return '–'; }
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
  }
  function fmtUptime(s) {
    if (s === null || s === undefined) { return ''; }
    if (s < 120) { return 'up ' + s + ' s'; }
    if (s < 7200) { return 'up ' + Math.round(s / 60) + ' min'; }
    return 'up ' + Math.round(s / 3600) + ' h';
  }

  function setCounter(id, n) {
    var node = $(id);
    node.textContent = fmtInt(n);
    node.dataset.value = (n === null || n === undefined) ? '' : String(n);
  }

  function fillTable(id, rows) {
    var body = $(id).tBodies[0];
    body.replaceChildren();
    rows.forEach(function (cells) {
      var tr = document.createElement('tr');
      cells.forEach(function (cell) {
        var td = cell instanceof Node ? cell : el('td', cell);
        if (!(cell instanceof Node) && typeof cell === 'number') { td.className = 'num'; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function num(text) { var td = el('td', text); td.className = 'num'; return td; }

  function badge(text, cls) { return el('span', text, 'badge ' + (cls || '')); }

  function badgeCell(state) {
    var td = el('td', state ? null : '–');
    if (state) { td.appendChild(badge(state, state)); }
    return td;
  }

  function fixed(x) { return (x === null || x === undefined) ? null : Number(x).toFixed(4); }

  function where(src) {
    if (!src || src.topic === undefined || src.topic === null) { return null; }
    return src.topic + ' / partition ' + src.partition + ' / offset ' + src.offset;
  }

  async function getJSON(url) {
    var resp = await fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } });
    if (resp.status === 401) {
      window.location.assign('/login');
      throw new Error('the session ended: log in again');
    }
    var body = await resp.json();
    if (!resp.ok) { throw new Error(body.error || resp.statusText); }
    return body;
  }

  function setStatus(text, down) {
    var node = $('status');
    node.textContent = text;
    node.classList.toggle('down', !!down);
  }

  // -- charts ------------------------------------------------------------------------------------------------

  function lineChart(id, yTitle, dots) {
    return new Chart($(id), {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: 'index', intersect: false },
        elements: { point: { radius: dots ? 2 : 0 }, line: { borderWidth: 2, tension: 0.2 } },
        scales: {
          x: { ticks: { maxTicksLimit: 8, autoSkip: true, maxRotation: 0 } },
          y: { beginAtZero: true, title: { display: !!yTitle, text: yTitle } }
        },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } }
      }
    });
  }

  function barChart(id, yTitle, stacked) {
    return new Chart($(id), {
      type: 'bar',
      data: { labels: [], datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { stacked: !!stacked, ticks: { maxTicksLimit: 10, autoSkip: true, maxRotation: 0 } },
          y: { stacked: !!stacked, beginAtZero: true, title: { display: !!yTitle, text: yTitle } }
        },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } }
      }
    });
  }

  function chart(id, make) {
    if (!charts[id]) { charts[id] = make(); }
    return charts[id];
  }

  function setSeries(c, labels, named) {
    c.data.labels = labels;
    var names = Object.keys(named);
    c.data.datasets = names.map(function (name, i) {
      var old = c.data.datasets.find(function (d) { return d.label === name; });
      var color = COLORS[i % COLORS.length];
      var ds = old || { label: name, borderColor: color, backgroundColor: color };
      ds.data = named[name];
      return ds;
    });
    c.update('none');
  }

  // -- pipeline view -----------------------------------------------------------------------------------------

  function renderServices(data) {
    var box = $('services');
    box.replaceChildren();
    data.services.forEach(function (s) {
      var state = s.up ? 'up' : 'down';
      var detail = s.up ? fmtUptime(s.uptime_seconds) : (s.error || 'down');
      if (s.worker && s.up && s.health && s.health.status !== 'ok') { state = 'failing'; }
      var card = el('div', null, 'card ' + state);
      card.id = 'service-' + s.name;
      card.dataset.up = String(s.up);
      card.appendChild(el('div', s.name, 'name'));
      card.appendChild(el('div', (s.up ? 'up' : 'down') + (detail ? ' · ' + detail : ''), 'state'));
      if (s.worker && s.health) {
        var parts = Object.keys(s.health.stages).map(function (k) { return k + ': ' + s.health.stages[k].state; });
        card.appendChild(el('div', 'health ' + s.health.status + (parts.length ? ' · ' + parts.join(', ') : ''),
                            'stages'));
      }
      card.title = s.error || '';
      box.appendChild(card);
    });
    [['kafka', 'Kafka (DLQ reader)'], ['hbase', 'HBase']].forEach(function (pair) {
      var info = data.infrastructure[pair[0]];
      var up = info.up;
      var card = el('div', null, 'card ' + (up === true ? 'up' : up === false ? 'down' : ''));
      card.id = 'service-' + pair[0];
      card.dataset.up = String(up);
      card.appendChild(el('div', pair[1], 'name'));
      card.appendChild(el('div', up === true ? 'up' : up === false ? 'down' : 'checking…', 'state'));
      if (info.error) { card.appendChild(el('div', info.error, 'stages')); }
      box.appendChild(card);
    });
  }

  function renderPipeline(d) {
    renderServices(d);
    var c = d.counters;
    setCounter('count-published', c.published);
    setCounter('count-approved', c.approved);
    setCounter('count-declined-model', c.declined_model);
    setCounter('count-declined-policy', c.declined_policy);
    setCounter('count-saved', c.saved);
    setCounter('count-dead-lettered', c.dead_lettered);
    setCounter('count-dlq-topic', d.dead_letters.reader.records);

    var labels = d.throughput.t.map(fmtTime);
    setSeries(chart('chart-throughput', function () { return lineChart('chart-throughput', 'applicants/s'); }),
              labels, d.throughput.series);

    fillTable('stages', d.stages.map(function (s) {
      return [el('td', s.stage), badgeCell(s.state),
              num(fmtRate(d.throughput.current[s.stage])), num(fmtInt(s.lag)),
              num(fmtSeconds(s.seconds_since_last_record)), num(fmtSeconds(s.batch_p95_seconds))];
    }));
    var lagNote = 'Lag: records behind the end of each stage\'s input topic.';
    if (d.lag.available === false) {
      lagNote = 'Lag: not available on this broker: its end offsets cannot be trusted (Tansu), so no lag figure ' +
                'is computed.';
    } else if (d.lag.available === null) {
      lagNote = 'Lag: no worker has reported it yet.';
    }
    $('lag-note').textContent = lagNote;
    $('lag-basis').textContent = d.lag.available === false ? 'not available on this broker'
                                                            : 'records behind, last 15 minutes';
    var retries = Object.keys(d.retries).map(function (k) { return k + ': ' + fmtInt(d.retries[k]); });
    $('retries').textContent = 'Retries since the workers started: ' + (retries.length ? retries.join(', ') : 'none');
    setSeries(chart('chart-lag', function () { return lineChart('chart-lag', 'records'); }),
              d.lag.t.map(fmtTime), d.lag.available === false ? {} : d.lag.series);

    var lat = d.latency;
    $('latency-window').textContent = lat.window + (lat.count ? ' · ' + fmtInt(lat.count) + ' applicants' : '');
    $('latency-p50').textContent = fmtSeconds(lat.p50);
    $('latency-p95').textContent = fmtSeconds(lat.p95);
    $('latency-p99').textContent = fmtSeconds(lat.p99);
    setSeries(chart('chart-latency', function () { return lineChart('chart-latency', 'seconds', true); }),
              lat.t.map(fmtTime), lat.series);

    var dl = d.dead_letters;
    fillTable('dlq-groups', dl.by_stage_reason.map(function (g) {
      return [g.stage, g.reason, num(fmtInt(g.count))];
    }));
    fillTable('dlq-latest', dl.latest.map(function (x) {
      var idCell = el('td');
      if (x.id !== null) {
        var a = el('a', String(x.id));
        a.href = '#lookup';
        a.addEventListener('click', function () { $('lookup-id').value = String(x.id); lookUp(String(x.id)); });
        idCell.appendChild(a);
      } else { idCell.textContent = '(no id)'; }
      return [fmtTime(x.failed_at), idCell, x.stage, x.reason, x.first_error || ''];
    }));
    var r = dl.reader;
    $('dlq-reader').textContent = r.connected
      ? (r.topic_exists === false ? 'The DLQ topic does not exist yet.'
        : 'Read ' + fmtInt(r.records) + ' dead letters from ' + r.partitions + ' partition(s).')
      : 'The DLQ reader is not connected' + (r.error ? ': ' + r.error : '.');
  }

  // -- business view -----------------------------------------------------------------------------------------

  function renderBusiness(d) {
    var dec = d.decisions;
    setSeries(chart('chart-decisions', function () { return barChart('chart-decisions', 'decisions', true); }),
              dec.t.map(fmtTime), dec.series);
    fillTable('decision-totals', Object.keys(dec.totals).map(function (k) {
      return [k, num(fmtInt(dec.totals[k]))];
    }));

    var a = d.approval;
    $('approval-overall').textContent = fmtPct(a.overall);
    $('approval-scored').textContent = fmtPct(a.scored);
    $('approval-policy-share').textContent = fmtPct(a.policy_share);
    fillTable('policy-rules', Object.keys(a.policy_declines_by_rule).map(function (k) {
      return [k, num(fmtInt(a.policy_declines_by_rule[k]))];
    }));
    $('grade-note').textContent = a.by_grade_note;
    fillTable('approval-by-grade', Object.keys(a.by_grade).map(function (g) {
      var row = a.by_grade[g];
      return [g, num(fmtInt(row.approved)), num(fmtInt(row.declined)), num(fmtPct(row.rate))];
    }));
    var risk = Object.keys(a.risk_api_decisions).map(function (k) {
      return k + ' ' + fmtInt(a.risk_api_decisions[k]);
    });
    $('risk-decisions').textContent = 'Decisions the risk API made since it started: ' +
                                      (risk.length ? risk.join(', ') : 'none yet');

    var s = d.scores;
    $('scores-basis').textContent = s.basis ? s.basis + ' · ' + fmtInt(s.count) + ' scores' : 'no scores yet';
    $('scores-model').textContent = s.model_version || '–';
    $('psi-value').textContent = s.psi === null ? '–' : s.psi.toFixed(3);
    var band = $('psi-band');
    band.textContent = s.band || '–';
    band.className = 'value badge ' + (s.band || '');
    var named = { 'live scores': s.live_share };
    if (s.reference_share.length) { named['training reference'] = s.reference_share; }
    setSeries(chart('chart-scores', function () { return barChart('chart-scores', 'share of scores', false); }),
              s.bins.map(function (b, i) { return (i === 0 ? '0' : s.bins[i - 1]) + '–' + b; }), named);
  }

  // -- lookup view -------------------------------------------------------------------------------------------

  function facts(pairs) {
    var dl = el('dl', null, 'facts');
    pairs.forEach(function (p) {
      dl.appendChild(el('dt', p[0]));
      var dd = el('dd', p[1] === null || p[1] === undefined || p[1] === '' ? '–' : p[1]);
      if (p[2]) { dd.id = p[2]; }
      dl.appendChild(dd);
    });
    return dl;
  }

  function simpleTable(head, rows) {
    var t = el('table', null, 'table');
    var tr = document.createElement('tr');
    head.forEach(function (h) { tr.appendChild(el('th', h)); });
    t.appendChild(el('thead')).appendChild(tr);
    var body = el('tbody');
    rows.forEach(function (r) {
      var row = document.createElement('tr');
      r.forEach(function (c) { row.appendChild(c instanceof Node ? c : el('td', c)); });
      body.appendChild(row);
    });
    t.appendChild(body);
    return t;
  }

  function renderAudit(box, a) {
    var p = a.provenance || {};
    box.appendChild(el('h3', 'Decision'));
    box.appendChild(facts([
      ['Decision', a.decision + (a.decided_by ? ' (by ' + a.decided_by + ')' : ''), 'lookup-decision'],
      ['Probability of default', fixed(a.probability_of_default), 'lookup-probability'],
      ['Risk band', a.risk_band], ['Threshold', fixed(a.threshold)],
      ['Model version', a.model_version, 'lookup-model'], ['Policy version', a.policy_version, 'lookup-policy']
    ]));
    box.appendChild(el('h3', 'Reasons'));
    var list = el('ul');
    list.id = 'lookup-reasons';
    (a.reasons || []).forEach(function (r) {
      var li = el('li');
      li.appendChild(el('code', r.code));
      li.appendChild(document.createTextNode(r.text ? ': ' + r.text : ''));
      list.appendChild(li);
    });
    if (!(a.reasons || []).length) { list.appendChild(el('li', 'none given')); }
    box.appendChild(list);
    box.appendChild(el('h3', 'Provenance and times'));
    box.appendChild(facts([
      ['Source', p.source], ['Store sequence', p.seq], ['Created in the store', p.created_at],
      ['Raw record', where(p)],
      ['Raw record time', p.timestamp_ms === undefined ? null : fmtDate(p.timestamp_ms)],
      ['Ingested', fmtDate(a.ingested_at)], ['Decided', fmtDate(a.decided_at)],
      ['Saved to HBase', fmtDate(a.saved_at)],
      ['HBase row', a.row_key]
    ]));
    box.appendChild(el('h3', 'History (' + (a.history || []).length + ' decision(s), oldest first)'));
    box.appendChild(simpleTable(['Decided', 'Outcome', 'Probability', 'Model', 'Policy', 'Reasons'],
      (a.history || []).map(function (h) {
        return [fmtDate(h.decided_at), STATUS_TEXT[h.outcome] || h.outcome,
                h.probability_of_default === null ? '–' : Number(h.probability_of_default).toFixed(4),
                h.model_version || '–', h.policy_version || '–',
                (h.reasons || []).map(function (r) { return r.code; }).join(', ')];
      })));
    box.appendChild(el('h3', 'Applicant'));
    var app = a.applicant || {};
    var grid = facts(Object.keys(app).sort().map(function (k) {
      var v = app[k];
      return [k, v === null ? '–' : (typeof v === 'object' ? JSON.stringify(v) : String(v))];
    }));
    grid.classList.add('wide');
    grid.id = 'lookup-applicant';
    box.appendChild(grid);
  }

  function renderDeadLetters(box, letters) {
    letters.forEach(function (x, i) {
      box.appendChild(el('h3', 'Dead letter' + (letters.length > 1 ? ' ' + (i + 1) : '')));
      var src = x.source || {};
      box.appendChild(facts([
        ['Stage', x.stage, i === 0 ? 'lookup-dlq-stage' : null],
        ['Reason', x.reason, i === 0 ? 'lookup-dlq-reason' : null],
        ['Failed at', fmtDate(x.failed_at)], ['Attempt', x.attempt],
        ['Came from', where(src)],
        ['In the DLQ at', x.dlq ? 'partition ' + x.dlq.partition + ' / offset ' + x.dlq.offset : null]
      ]));
      if (x.errors) {
        box.appendChild(simpleTable(['Field', 'Error'], x.errors.map(function (e) { return [e.field, e.reason]; })));
      } else if (x.first_error) {
        box.appendChild(el('p', x.first_error, 'note'));
      }
      if (x.original_text !== undefined) {
        box.appendChild(el('p', 'Original bytes (' + fmtInt(x.original_size) + ' bytes' +
                           (x.original_truncated ? ', cut when dead-lettered' : '') + '):', 'note'));
        box.appendChild(el('pre', x.original_text, 'original'));
      }
    });
  }

  async function lookUp(id) {
    var box = $('lookup-result');
    box.hidden = false;
    box.replaceChildren(el('p', 'Looking up ' + id + '…', 'note'));
    try {
      var r = await getJSON('/api/lookup/' + encodeURIComponent(id));
      box.replaceChildren();
      var head = el('h2', 'Application ' + r.id + ' ');
      var b = badge(STATUS_TEXT[r.status] || r.status, r.status);
      b.id = 'lookup-status';
      b.dataset.status = r.status;
      head.appendChild(b);
      box.appendChild(head);
      var msg = el('p', r.message, 'note');
      msg.id = 'lookup-message';
      box.appendChild(msg);
      if (r.audit) { renderAudit(box, r.audit); }
      if (r.dead_letters && r.dead_letters.length) { renderDeadLetters(box, r.dead_letters); }
    } catch (err) {
      box.replaceChildren(el('p', 'Lookup failed: ' + err.message, 'error'));
    }
  }

  // -- the loop ----------------------------------------------------------------------------------------------

  async function refresh() {
    if (current === 'lookup') { return; }
    try {
      var data = await getJSON('/api/' + current);
      if (current === 'pipeline') { renderPipeline(data); } else { renderBusiness(data); }
      setStatus('live · updated ' + fmtTime(data.generated_at));
    } catch (err) {
      setStatus('not updated: ' + err.message, true);
    }
  }

  function loop() {
    refresh().finally(function () { timer = window.setTimeout(loop, POLL_MS); });
  }

  function show(view) {
    if (['pipeline', 'business', 'lookup'].indexOf(view) < 0) { view = 'pipeline'; }
    current = view;
    ['pipeline', 'business', 'lookup'].forEach(function (v) {
      $('view-' + v).hidden = v !== view;
      $('tab-' + v).classList.toggle('active', v === view);
    });
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    loop();
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('lookup-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var id = $('lookup-id').value.trim();
      if (/^[0-9]{1,20}$/.test(id)) { lookUp(id); }
    });
    window.addEventListener('hashchange', function () { show(window.location.hash.slice(1)); });
    show(window.location.hash.slice(1) || 'pipeline');
  });
}());
