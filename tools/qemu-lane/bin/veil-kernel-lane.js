#!/usr/bin/env node
// Kept outside dist/ so npm can link the bin at install time, before the first build.
import '../dist/cli.js';
