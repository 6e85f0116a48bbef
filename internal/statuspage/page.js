(function () {
  'use strict';
  // Sorting, the filter and opened tables live in the address's #fragment.
  // The page refreshes itself by fetching its own address and swapping the
  // body in place: no navigation, so the filter box keeps its focus, the
  // scroll stays, and a stopped process shows as a line, not an error page.
  var state = new URLSearchParams(location.hash.slice(1));
  // flipped: tables opened (when collapsed by default) or closed.
  var flipped = new Set((state.get('flip') || '').split('\n').filter(Boolean));
  var filter = document.getElementById('filter');
  var sortBy = document.getElementById('sort');
  var tools = filter && filter.parentNode;
  var lastKey = 0;
  var table, bodies, names, keys, collapsed;
  if (!filter) { return; }
  filter.value = state.get('q') || '';
  if (state.get('sort')) { sortBy.value = state.get('sort'); }

  function each(list, f) { Array.prototype.forEach.call(list, f); }
  function save() {
    var p = new URLSearchParams();
    if (filter.value) { p.set('q', filter.value); }
    if (sortBy.value !== 'name') { p.set('sort', sortBy.value); }
    if (flipped.size) { p.set('flip', Array.from(flipped).join('\n')); }
    var h = p.toString();
    history.replaceState(null, '', h ? '#' + h : location.pathname + location.search);
  }
  function setOpen(i, on) {
    each(bodies[i].querySelectorAll('tr.p'), function (r) { r.hidden = !on; });
    bodies[i].querySelector('button.x').setAttribute('aria-expanded', on ? 'true' : 'false');
    if (on === collapsed) { flipped.add(names[i]); } else { flipped.delete(names[i]); }
  }
  function applyFilter() {
    var q = filter.value.trim().toLowerCase();
    var n = 0;
    bodies.forEach(function (b, i) {
      var hit = !q || keys[i].indexOf(q) >= 0;
      b.hidden = !hit;
      if (hit) { n++; }
    });
    document.getElementById('shown').textContent = n + ' of ' + bodies.length + ' tables';
  }
  function val(b, k) {
    var v = parseFloat(b.getAttribute('data-' + k));
    return isNaN(v) ? -1 : v;
  }
  function applySort() {
    var k = sortBy.value;
    var order = bodies.map(function (b, i) { return i; });
    order.sort(function (x, y) {
      if (k !== 'name') {
        // The worst first: the most lag, dead letters, failed batches and
        // records/s; the oldest last commit (a table that stopped).
        var d = k === 'last' ? val(bodies[x], k) - val(bodies[y], k) : val(bodies[y], k) - val(bodies[x], k);
        if (d) { return d; }
      }
      return names[x] < names[y] ? -1 : names[x] > names[y] ? 1 : 0;
    });
    var frag = document.createDocumentFragment();
    order.forEach(function (i) { frag.appendChild(bodies[i]); });
    table.appendChild(frag);
  }
  // attach takes the tables of the current body and applies the state.
  function attach() {
    table = document.getElementById('tables');
    collapsed = table.classList.contains('collapsed');
    bodies = Array.prototype.slice.call(table.querySelectorAll('tbody[data-table]'));
    names = bodies.map(function (b) { return b.getAttribute('data-table'); });
    keys = bodies.map(function (b, i) {
      var s = names[i];
      each(b.querySelectorAll('tr.p'), function (r) { s += '\n' + r.getAttribute('data-tp'); });
      return s.toLowerCase();
    });
    bodies.forEach(function (b, i) { if (flipped.has(names[i])) { setOpen(i, collapsed); } });
    applySort();
    applyFilter();
    table.addEventListener('click', function (e) {
      var btn = e.target.closest('button.x');
      if (btn) {
        setOpen(bodies.indexOf(btn.closest('tbody')), btn.getAttribute('aria-expanded') !== 'true');
        save();
        return;
      }
      var th = e.target.closest('th[data-sort]');
      if (th) {
        sortBy.value = th.getAttribute('data-sort');
        applySort();
        save();
      }
    });
  }

  filter.addEventListener('input', function () { lastKey = Date.now(); applyFilter(); save(); });
  sortBy.addEventListener('change', function () { applySort(); save(); });
  document.getElementById('open-all').addEventListener('click', function () {
    bodies.forEach(function (b, i) { if (!b.hidden) { setOpen(i, true); } });
    save();
  });
  document.getElementById('close-all').addEventListener('click', function () {
    bodies.forEach(function (b, i) { if (!b.hidden) { setOpen(i, false); } });
    save();
  });
  attach();

  var every = (parseInt(document.body.getAttribute('data-refresh'), 10) || 5) * 1000;
  function refresh() {
    if (document.activeElement === filter && Date.now() - lastKey < 10000) {
      setTimeout(refresh, 2000);
      return;
    }
    fetch(location.pathname + location.search, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      var fresh = doc.getElementById('filter');
      if (!fresh || !doc.getElementById('tables')) { throw new Error('not the status page'); }
      fresh.parentNode.replaceWith(tools); // the same box, focus and caret
      each(doc.querySelectorAll('script'), function (s) { s.remove(); });
      var y = window.scrollY;
      document.body.replaceChildren.apply(document.body, Array.prototype.slice.call(doc.body.childNodes));
      attach();
      window.scrollTo(0, y);
    }).catch(function (err) {
      var stale = document.getElementById('stale');
      if (!stale) {
        stale = document.createElement('p');
        stale.id = 'stale';
        stale.className = 'err';
        document.body.insertBefore(stale, document.body.firstChild);
      }
      stale.textContent = 'refreshing failed at ' + new Date().toLocaleTimeString() + ' (' + err.message + '): the numbers below are older; retrying';
    }).then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);

  // How long the page took, for its test: the script runs after the whole
  // document was parsed; load is after layout.
  var root = document.documentElement;
  root.setAttribute('data-ready-ms', String(Math.round(performance.now())));
  window.addEventListener('load', function () { root.setAttribute('data-load-ms', String(Math.round(performance.now()))); });
}());
