// Onboarding: the picture of the bank app's QR is redrawn as PNG (any photo format the phone
// takes, no wider than 1200 px) and sent with the form; the service finds the code in it.
(function () {
  "use strict";
  var file = document.getElementById("qr-file");
  var field = document.getElementById("qr-image");
  var form = document.getElementById("scan");
  if (!file || !field || !form) { return; }
  var biggest = 1200;
  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    if (!chosen) { return; }
    var picture = new Image();
    var url = URL.createObjectURL(chosen);
    picture.onload = function () {
      var scale = Math.min(1, biggest / Math.max(picture.width, picture.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(picture.width * scale);
      canvas.height = Math.round(picture.height * scale);
      var context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(picture, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      field.value = canvas.toDataURL("image/png");
      form.submit();
    };
    picture.src = url;
  });
})();

// The page draws a vendor's code (V…); choosing another kind gives the drawn code that kind's
// first letter, as the service would have drawn it, unless the officer typed a code of their own.
(function () {
  "use strict";
  var kind = document.getElementById("kind");
  var code = document.getElementById("code");
  var scan = document.getElementById("scan");
  if (!kind || !code || !scan) { return; }
  var prefixes = { vendor: "V", school: "S", cooperative: "C" };
  var drawn = code.value.slice(1);
  kind.addEventListener("change", function () {
    var prefix = prefixes[kind.value];
    var stillDrawn = code.value.length === drawn.length + 1 && code.value.slice(1) === drawn;
    if (prefix && stillDrawn) { code.value = prefix + drawn; }
    scan.elements.kind.value = kind.value;
    scan.elements.code.value = code.value;
  });
})();
