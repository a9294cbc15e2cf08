export { resume as default } from "./pause.js";
