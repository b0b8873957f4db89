import { describeReadme } from '../helpers/readme-suite';

// README.md's demos that start a Temporal server, a fleet and HAProxy of their own: they run beside other test
// files; the rest of README.md runs in readme.test.ts.
describeReadme('own stacks');
