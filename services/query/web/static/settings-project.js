// Project and API keys: built in issue 20 (see the page's section in the README).
"use strict";
