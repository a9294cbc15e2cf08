// @ts-check
import eslint from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["node_modules/", "artifacts/", "cache/", "coverage/", "types/", "dist/", "deploy/deployments/"],
  },
  eslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  // The billing console's page script runs in the browser, with uPlot loaded before it.
  {
    files: ["keeper/src/console/static/**/*.js"],
    languageOptions: { sourceType: "script", globals: { ...globals.browser, uPlot: "readonly" } },
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
);
