"""The status page served at ``/``: plain HTML + a few lines of JavaScript, no build step.

It renders the snapshot embedded by the server (:func:`status_html`; so the page is complete
at its load event), then follows ``/status/stream`` (SSE, one JSON snapshot per ``status``
event).  Every element the tests look for has an ``id``.
"""

import json
from typing import Any

STATUS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dcpool bridge</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.muted{color:#888}
</style></head>
<body>
<h1>dcpool bridge</h1>
<p>Outbox: last event id <b id="last-event-id">?</b> · stream <span id="stream-state" class="muted">connecting</span></p>
<h2>Accounts</h2>
<table id="accounts"><thead><tr><th>account</th><th>home DC</th><th>running</th><th>pts</th><th>events</th><th>update lag (s)</th><th>routing (DC: endpoint, connections)</th></tr></thead><tbody></tbody></table>
<h2>Webhooks</h2>
<table id="webhooks"><thead><tr><th>name</th><th>url</th><th>backlog</th><th>delivered</th><th>retries</th><th>dropped</th><th>disabled</th></tr></thead><tbody></tbody></table>
<script>
function cell(tr, text){const td=document.createElement('td');td.textContent=text;tr.appendChild(td);}
function render(s){
  document.getElementById('last-event-id').textContent=s.last_event_id;
  const ab=document.querySelector('#accounts tbody');ab.textContent='';
  for(const a of s.accounts){const tr=document.createElement('tr');tr.dataset.account=a.name;
    cell(tr,a.name);cell(tr,a.home_dc??'-');cell(tr,a.running?'yes':'no');cell(tr,a.pts??'-');cell(tr,a.events);
    cell(tr,a.lag_seconds==null?'-':a.lag_seconds.toFixed(1));
    cell(tr,(a.routing||[]).map(r=>`DC${r.dc_id}: ${r.endpoint||'-'} (${r.connections})`).join('; '));ab.appendChild(tr);}
  const wb=document.querySelector('#webhooks tbody');wb.textContent='';
  for(const w of s.webhooks){const tr=document.createElement('tr');tr.dataset.webhook=w.name;
    cell(tr,w.name);cell(tr,w.url);cell(tr,w.pending);cell(tr,w.delivered);cell(tr,w.failed_attempts);cell(tr,w.dropped);cell(tr,w.disabled?'yes':'no');wb.appendChild(tr);}
}
const initial = /*INITIAL*/null;
if (initial) render(initial); else fetch('status').then(r=>r.json()).then(render);
const es=new EventSource('status/stream');
es.addEventListener('status',e=>{document.getElementById('stream-state').textContent='live';render(JSON.parse(e.data));});
es.onerror=()=>{document.getElementById('stream-state').textContent='reconnecting';};
</script>
</body></html>
"""


def status_html(snapshot: Any) -> str:
    """The page with ``snapshot`` embedded (``</`` escaped so no string can end the script)."""
    text = json.dumps(snapshot).replace("</", "<\\/")
    return STATUS_HTML.replace("/*INITIAL*/null", text)
