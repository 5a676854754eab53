/** Entry of dist/public/plaza.js: `<script src="/plaza.js">` then `Plaza.connect(…)`. */
import { connect, PlazaError } from './index.js';

declare global {
  interface Window {
    Plaza: { connect: typeof connect; PlazaError: typeof PlazaError };
  }
}

window.Plaza = { connect, PlazaError };
