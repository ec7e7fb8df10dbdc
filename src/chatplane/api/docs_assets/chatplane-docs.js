// chatplane's API reference page (GET /docs): Swagger UI over the OpenAPI document that
// sits beside the page (GET /openapi.json), resolved relative to the page so that the
// page works behind a path prefix too. Nothing is loaded from another host: the
// validator badge (which calls validator.swagger.io) is turned off.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
