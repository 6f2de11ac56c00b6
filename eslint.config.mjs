// ESLint with typescript-eslint's type-aware recommended rules (the TypeScript program of tsconfig.json):
// the rules that need types — floating and misused promises, awaiting non-promises, unsafe `any` flow —
// catch the mistakes an actor runtime built on promises actually makes. Formatting is Prettier's
// (.prettierrc.json), so no stylistic rule is enabled here.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'coverage/', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `async` without `await` marks a function that fulfils a promise-returning contract (ActorRef.ask, LookupAll,
      // a CLI command's run, a cleanup, prom-client's get, the fakes of chain clients) and turns a throw
      // into the rejection its callers handle; a forgotten await is what no-floating-promises,
      // no-misused-promises and await-thenable catch.
      '@typescript-eslint/require-await': 'off',
      // A leading underscore names a binding kept on purpose: a key left out of an object rest
      // (`{ secrets: _secrets, ...view }`), a loop that only counts, a parameter a signature requires.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    // The .mjs files are plain Node scripts (bin/, this config): no TypeScript program, Node's globals.
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
);
