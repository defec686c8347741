// The live pages: the stall page (one payee's payments) and the market board (every stall's).
// Payments arrive over Server-Sent Events and are spoken aloud in Vietnamese (or, without a
// Vietnamese voice, a chime and the amount in large text). Each payment is announced once: ids
// already seen are kept in sessionStorage, and the browser's EventSource sends Last-Event-ID when
// it reconnects, so the server resends only what was missed.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var board = root.dataset.kind === "board";
  var seenKey = "ml-seen-" + root.dataset.key;
  var seen = new Set(JSON.parse(sessionStorage.getItem(seenKey) || "[]"));
  var soundOn = false;
  var wakeLock = null;
  var status = document.getElementById("live-status");
  var list = document.getElementById("payments");
  var total = document.getElementById("today-total");
  var announceBox = document.getElementById("announce");
  var chime = document.getElementById("chime");
  var currency = root.dataset.currency;
  // The board keeps the latest few in large type; the stall page keeps the whole day.
  var boardLines = 12;

  // Payments the page was rendered with are not news.
  list.querySelectorAll("li[data-id]").forEach(function (item) { seen.add(item.dataset.id); });
  remember();

  function remember() {
    // The newest few hundred are enough to recognise a resent event.
    var ids = Array.from(seen).slice(-500);
    sessionStorage.setItem(seenKey, JSON.stringify(ids));
  }

  function grouped(amount) {
    return String(amount).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  }

  // "+50.000đ" on the stall page; "Quầy 12 đã nhận 35.000đ" on the board.
  function headline(payment) {
    var amount = grouped(payment.amount) + currency;
    return board ? payment.stall + " " + root.dataset.received + " " + amount : "+" + amount;
  }

  function vietnameseVoice() {
    if (!("speechSynthesis" in window)) { return null; }
    var voices = window.speechSynthesis.getVoices();
    for (var i = 0; i < voices.length; i++) {
      if (voices[i].lang && voices[i].lang.toLowerCase().indexOf("vi") === 0) { return voices[i]; }
    }
    return null;
  }

  function say(sentence) {
    var voice = vietnameseVoice();
    if (voice) {
      var utterance = new SpeechSynthesisUtterance(sentence);
      utterance.lang = "vi-VN";
      if (voice instanceof SpeechSynthesisVoice) { utterance.voice = voice; }
      window.speechSynthesis.speak(utterance);
    } else {
      chime.currentTime = 0;
      chime.play().catch(function () {});
    }
  }

  function announce(payment) {
    announceBox.textContent = headline(payment);
    if (soundOn && payment.announcement) { say(payment.announcement); }
  }

  function show(payment) {
    var empty = document.getElementById("no-payments");
    if (empty) { empty.remove(); }
    var item = document.createElement("li");
    item.dataset.id = payment.bank_transaction_id;
    var time = document.createElement("span");
    var at = new Date(payment.occurred_at);
    time.textContent = at.toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Ho_Chi_Minh" });
    var amount = document.createElement("strong");
    amount.textContent = board ? headline(payment) : grouped(payment.amount) + currency;
    item.append(time, amount);
    list.prepend(item);
    if (board) {
      while (list.children.length > boardLines) { list.lastElementChild.remove(); }
    }
    if (total) {
      var sum = Number(total.textContent.replace(/\D/g, "")) + Number(payment.amount);
      total.textContent = grouped(sum);
    }
  }

  function received(event) {
    var payment = JSON.parse(event.data);
    if (seen.has(payment.bank_transaction_id)) { return; }
    seen.add(payment.bank_transaction_id);
    remember();
    show(payment);
    announce(payment);
  }

  function listen() {
    var source = new EventSource(root.dataset.events);
    source.addEventListener("open", function () { status.textContent = root.dataset.liveOn; });
    source.addEventListener("payment_received", received);
    // Events may have been missed inside the service: the page's list is the truth.
    source.addEventListener("lagged", function () { window.location.reload(); });
    // The board's link was revoked: the page now answers that it is gone.
    source.addEventListener("revoked", function () { source.close(); window.location.reload(); });
    source.addEventListener("error", function () {
      status.textContent = root.dataset.liveLost;
      if (source.readyState === EventSource.CLOSED) {
        // Refused or ended for good (a logout, a restart): reload, which logs in again if needed.
        setTimeout(function () { window.location.reload(); }, 5000);
      }
    });
  }

  function keepAwake() {
    if (!("wakeLock" in navigator) || document.visibilityState !== "visible" || wakeLock) { return; }
    navigator.wakeLock.request("screen").then(function (lock) {
      wakeLock = lock;
      lock.addEventListener("release", function () { wakeLock = null; });
    }).catch(function () {});
  }

  document.getElementById("sound").addEventListener("click", function (event) {
    soundOn = true;
    event.currentTarget.textContent = root.dataset.soundIsOn;
    event.currentTarget.setAttribute("aria-pressed", "true");
    // Browsers let a page make sound only after a tap: this tap unlocks the chime.
    chime.muted = true;
    chime.play().then(function () { chime.pause(); chime.muted = false; }).catch(function () { chime.muted = false; });
    keepAwake();
  });
  var fullScreen = document.getElementById("full-screen");
  if (fullScreen) {
    fullScreen.addEventListener("click", function () {
      var qr = document.getElementById("static");
      if (qr.requestFullscreen) { qr.requestFullscreen().catch(function () {}); }
    });
  }
  document.addEventListener("visibilitychange", keepAwake);
  keepAwake();
  listen();
})();
