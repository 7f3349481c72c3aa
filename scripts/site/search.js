// Site search of the pandoc build: search_index.js holds one entry per section of every page
// ({href, title, section, text}); search.html?q=... lists the sections holding every word of the query.
(function () {
  var box = document.getElementById('search-results');
  if (!box) return;
  var q = (new URLSearchParams(location.search).get('q') || '').trim();
  document.querySelectorAll('input[name=q]').forEach(function (i) { i.value = q; });
  var words = q.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) { box.textContent = 'Type words in the search box.'; return; }
  var phrase = words.join(' ');
  var hits = (window.SEARCH_INDEX || []).map(function (e) {
    var hay = (e.title + ' ' + e.section + ' ' + e.text).toLowerCase().replace(/\s+/g, ' ');
    if (!words.every(function (w) { return hay.indexOf(w) >= 0; })) return null;
    return {e: e, score: (hay.indexOf(phrase) >= 0 ? 2 : 0) + (e.section.toLowerCase().indexOf(phrase) >= 0 ? 1 : 0),
            at: hay.indexOf(phrase) >= 0 ? hay.indexOf(phrase) : hay.indexOf(words[0])};
  }).filter(Boolean).sort(function (a, b) { return b.score - a.score; });
  var head = document.createElement('p');
  head.textContent = hits.length + ' section' + (hits.length === 1 ? '' : 's') + ' found for “' + q + '”.';
  box.appendChild(head);
  var ul = document.createElement('ul');
  hits.slice(0, 100).forEach(function (h) {
    var li = document.createElement('li'), a = document.createElement('a'), p = document.createElement('div');
    a.href = h.e.href; a.className = 'search-hit';
    a.textContent = h.e.title + (h.e.section && h.e.section !== h.e.title ? ' › ' + h.e.section : '');
    var text = (h.e.title + ' ' + h.e.section + ' ' + h.e.text).replace(/\s+/g, ' ');
    p.className = 'snippet'; p.textContent = '…' + text.substr(Math.max(0, h.at - 80), 240) + '…';
    li.appendChild(a); li.appendChild(p); ul.appendChild(li);
  });
  box.appendChild(ul);
})();
