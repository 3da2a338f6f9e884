/* Filter (text + status) and click-to-sort for every table that has a toolbar. Reads only data-*
   attributes (escaped by the templates); builds no markup from them. */
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
