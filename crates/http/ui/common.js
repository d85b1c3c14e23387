// Shared by the search page and the operator console: the API key kept for this browser
// tab (session storage, never sent anywhere but this server), calls to the API, and DOM
// nodes made from text (values from the server are only ever set as text).
'use strict';
var aidocs = (function () {
  var KEY = 'aidocs-api-key';

  function key() { return sessionStorage.getItem(KEY) || ''; }

  // Keep `k` for this tab; an empty one forgets the key.
  function setKey(k) {
    if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY);
  }

  // The answer of `method path` (JSON `body` when given, the key as a bearer token): its
  // JSON on success, else an Error with the server's message, `status`, `retry`
  // (Retry-After) and `data` (the error body).
  function api(method, path, body) {
    var headers = { 'Accept': 'application/json' };
    if (key()) headers['Authorization'] = 'Bearer ' + key();
    var init = { method: method, headers: headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (data) {
        if (r.ok) return data;
        var err = new Error((data && data.error && data.error.message) || ('HTTP ' + r.status));
        err.status = r.status;
        err.retry = r.headers.get('Retry-After');
        err.data = data;
        throw err;
      });
    });
  }

  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  // The page's status line (`#status`, a live region): `text`, marked as an error or not.
  function say(text, isError) {
    var status = document.getElementById('status');
    status.textContent = text;
    status.classList.toggle('error', !!isError);
  }

  return { key: key, setKey: setKey, api: api, node: node, say: say };
})();
