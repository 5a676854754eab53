/** Entry of dist/public/plaza.js: `<script src="/plaza.js">` then `Plaza.connect(…)`. */
import { connect } from './index.js';

declare global {
  interface Window {
    Plaza: { connect: typeof connect };
  }
}

window.Plaza = { connect };
