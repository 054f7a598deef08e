// Starts Swagger UI on /docs from a file of our own, so the page's CSP needs no inline script.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: document.body.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true,
                               presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout" });
});
