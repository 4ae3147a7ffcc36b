// Audit log: built in issue 20 (see the page's section in the README).
"use strict";
