// Card payments: Stripe.js turns the card into a token in the browser (the card number
// never reaches the platform); the form posts the token and the server charges it. When
// the bank asks for 3-D Secure, the server sends the page back with the PaymentIntent's
// client secret and Stripe.js finishes it here.
(function () {
  "use strict";
  var root = document.getElementById("card-payment");
  if (!root || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(root.dataset.key);
  var secret = root.dataset.clientSecret;
  if (secret) {
    stripe.confirmCardPayment(secret).then(function () {
      document.getElementById("refresh-form").submit();
    });
    return;
  }
  var form = document.getElementById("card-form");
  var errors = document.getElementById("card-errors");
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = document.getElementById("card-submit");
    button.disabled = true;
    errors.textContent = "";
    stripe.createToken(card).then(function (result) {
      if (result.error || !result.token) {
        errors.textContent = (result.error && result.error.message) || root.dataset.errorText;
        button.disabled = false;
        return;
      }
      form.querySelector("input[name=token]").value = result.token.id;
      form.submit();
    });
  });
}());
