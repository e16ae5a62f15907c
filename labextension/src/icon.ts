/**
 * Sidebar / status icon: three linked boxes (widgets kept in sync).
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="2" y="3" width="8" height="6" rx="1"/>
    <rect x="14" y="3" width="8" height="6" rx="1"/>
    <rect x="8" y="15" width="8" height="6" rx="1"/>
    <path d="M6 9h1.5v3H12v3h-1.5v-1.5H6zM18 9h-1.5v3H12v1.5h6z"/>
  </g>
</svg>`;

export const relayIcon = new LabIcon({
  name: 'jupyter-widget-relay:relay',
  svgstr
});
