"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (new URLSearchParams(location.search).get("signin") === "failed") {
    document.getElementById("failed").hidden = false;
  }
});
