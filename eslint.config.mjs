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
      // Passing on a caught value as it is (`catch (err) { reject(err) }`) keeps the caller's error;
      // only-throw-error allows the same for `throw` by default.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
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
    // The node loads undici's and viem's parts from their files (src/undici-parts.ts, src/abi/viem.ts):
    // their indexes load all of undici and all of viem's utilities, and cost the process about 6 and
    // 13 MB of RSS for its whole life. Their types stay importable.
    files: ['src/**/*.ts'],
    ignores: ['src/undici-parts.ts', 'src/undici-lib.d.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'undici', message: 'import from src/undici-parts.ts (its header says why)', allowTypeImports: true },
            ...['viem', 'viem/utils', 'abitype'].map((name) => ({
              name,
              message: 'use src/abi/viem.ts (loadViem, viem(); its header says why)',
              allowTypeImports: true,
            })),
          ],
        },
      ],
      // The same for a dynamic import() of them, which the rule above does not see.
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression[source.value=/^(undici|viem|viem\\/utils|abitype)$/]',
          message: 'import undici from src/undici-parts.ts and viem from src/abi/viem.ts (their headers say why)',
        },
      ],
    },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringMatching, ...) are typed `any` so that they
    // can stand for any expected value: each expectation holding one would be an unsafe assignment. A JSON
    // body typed `any` is still caught where it is used (no-unsafe-member-access, -argument, -call, -return).
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // The .mjs files are plain Node scripts (bin/, this config): no TypeScript program, Node's globals.
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
);
