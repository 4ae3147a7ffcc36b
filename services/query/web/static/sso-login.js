// Single sign-on on the sign-in page: built in issue 20 (README, "Teams").
"use strict";
