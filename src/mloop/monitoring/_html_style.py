"""Inline stylesheet and script of the HTML reports (kept apart so the renderer stays readable)."""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root{--bg:#f5f6f8;--panel:#fff;--ink:#1c2230;--muted:#667085;--line:#e4e7ec;--ref:#9aa5b8;
--cur:#2f6fde;--bad:#c8322b;--bad-bg:#fdf0ef;--warn:#b25e09;--warn-bg:#fff6e5;--good:#1a7f4b;
--good-bg:#eaf6ef}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{padding:28px 40px 8px}
.brand{font-weight:700;letter-spacing:.02em;color:var(--cur);font-size:13px}
.brand span{color:var(--muted);font-weight:500;margin-left:6px}
h1{margin:6px 0 2px;font-size:26px}
h2{margin:0;font-size:17px}
h3{margin:18px 0 8px;font-size:14px}
.sub{margin:0;color:var(--ink)}
.meta,.muted{color:var(--muted);font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:14px;padding:12px 40px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 18px;
min-width:210px;border-top:4px solid var(--line)}
.card .label,.tile .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:650;margin-top:2px}
.card .value small{font-size:14px;color:var(--muted);font-weight:500}
.card .note,.tile .note{color:var(--muted);font-size:12px}
.card.bad{border-top-color:var(--bad)}.card.bad .value{color:var(--bad)}
.card.good{border-top-color:var(--good)}.card.good .value{color:var(--good)}
.card.warn{border-top-color:var(--warn)}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;margin:14px 40px;
padding:16px 18px}
.panel-head{display:flex;align-items:center;justify-content:space-between;gap:12px;margin-bottom:10px}
.legend{font-size:12px;color:var(--muted);display:flex;align-items:center;gap:6px}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-left:10px}
.sw.ref{background:var(--ref)}.sw.cur{background:var(--cur)}
.toolbar{display:flex;gap:10px;align-items:center;margin-bottom:10px}
.toolbar input,.toolbar select{font:inherit;padding:6px 10px;border:1px solid var(--line);
border-radius:6px;background:#fff}
.toolbar input{width:260px}
.count{color:var(--muted);font-size:12px;margin-left:auto}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:12px;color:var(--muted);font-weight:600;padding:8px 10px;
border-bottom:1px solid var(--line);white-space:nowrap;user-select:none}
th[data-sort]{cursor:pointer}th[data-sort]:hover{color:var(--ink)}
th[data-dir=asc]::after{content:" ▲"}th[data-dir=desc]::after{content:" ▼"}
td{padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:middle}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.name{font-weight:600;max-width:260px;word-break:break-word}
.kind{display:inline-block;font-weight:500;font-size:11px;color:var(--muted);
border:1px solid var(--line);border-radius:4px;padding:0 5px;margin-top:2px}
tr.st-drift td:first-child,tr.v-fail td:first-child{box-shadow:inset 4px 0 var(--bad)}
tr.st-drift,tr.v-fail{background:var(--bad-bg)}
tr.st-error td:first-child,tr.st-missing_column td:first-child,tr.v-warn td:first-child{
box-shadow:inset 4px 0 var(--warn)}
.badge{display:inline-block;border-radius:999px;padding:2px 9px;font-size:12px;font-weight:600;
white-space:nowrap;background:#eef0f3;color:var(--muted)}
.badge.drift,.badge.fail{background:var(--bad);color:#fff}
.badge.ok,.badge.pass{background:var(--good-bg);color:var(--good)}
.badge.error,.badge.missing_column,.badge.warn{background:var(--warn-bg);color:var(--warn)}
.badge.est{background:#e8efff;color:var(--cur);vertical-align:middle;margin-left:6px}
.stat{font-weight:650}.thr{color:var(--muted);font-size:12px;white-space:nowrap}
.gauge{position:relative;height:5px;background:#eef0f3;border-radius:3px;margin:5px 0 0 auto;
width:120px;overflow:hidden}
.gauge i{position:absolute;left:0;top:0;bottom:0;background:var(--cur)}
.gauge b{position:absolute;left:50%;top:0;bottom:0;width:1px;background:var(--ink)}
tr.st-drift .gauge i{background:var(--bad)}
.msg{color:var(--muted);font-size:12px;font-weight:400}
.nochart{color:var(--muted);font-size:12px;font-style:italic;width:360px}
.chart{display:block}
.chart .ref{fill:var(--ref)}.chart .cur{fill:var(--cur)}
.chart .hit{fill:transparent}.chart .bin:hover .hit{fill:#f0f3f9}
.chart .axis{stroke:#b9c0cc}.chart .grid{stroke:#eef0f3}
.chart .ax{font-size:10px;fill:var(--muted)}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:130px}
.tile .value{font-size:20px;font-weight:650}
table.seg td,table.seg th{padding:6px 10px}
footer{color:var(--muted);font-size:12px;padding:10px 40px 30px}
tr[hidden]{display:none}
th.chk,td.chk{text-align:center;white-space:nowrap}
.dot{display:inline-block;min-width:44px;padding:1px 6px;border-radius:5px;font-size:12px;
font-variant-numeric:tabular-nums;color:var(--muted)}
.dot.fail{background:var(--bad);color:#fff;font-weight:600}
.dot.warn{background:var(--warn-bg);color:var(--warn);font-weight:600}
.dot.pass{color:var(--good)}
.dot.na,.dot.skip{color:#c3c8d1}
.banner{border-radius:8px;padding:8px 12px;margin-bottom:10px;font-weight:600}
.banner.fail{background:var(--bad-bg);color:var(--bad)}
.banner.warn{background:var(--warn-bg);color:var(--warn)}
"""

# Filter (text + status) and click-to-sort for every table that has a toolbar. Reads only data-*
# attributes written (escaped) by the renderer; builds no markup from them.
SCRIPT = """
(function(){
  document.querySelectorAll('.toolbar').forEach(function(bar){
    var table=document.getElementById(bar.dataset.table);
    if(!table){return;}
    var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
    var q=bar.querySelector('.q'), st=bar.querySelector('.status'), shown=bar.querySelector('.shown');
    function apply(){
      var term=q.value.trim().toLowerCase(), want=st.value, n=0;
      rows.forEach(function(r){
        var text=((r.dataset.name||'')+' '+(r.dataset.check||'')).toLowerCase();
        var ok=(!term||text.indexOf(term)>=0)&&(want==='all'||r.dataset.status===want);
        r.hidden=!ok; if(ok){n++;}
      });
      shown.textContent=n;
    }
    q.addEventListener('input',apply); st.addEventListener('change',apply);
    table.querySelectorAll('th[data-sort]').forEach(function(th){
      th.addEventListener('click',function(){
        var key=th.dataset.sort, num=th.dataset.type==='num';
        var dir=th.dataset.dir==='desc'?'asc':'desc';
        table.querySelectorAll('th[data-sort]').forEach(function(o){delete o.dataset.dir;});
        th.dataset.dir=dir;
        var sign=dir==='asc'?1:-1;
        rows.sort(function(a,b){
          var x=a.getAttribute('data-'+key)||'', y=b.getAttribute('data-'+key)||'';
          if(num){return sign*((parseFloat(x)||0)-(parseFloat(y)||0));}
          return sign*x.localeCompare(y);
        });
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
})();
"""
