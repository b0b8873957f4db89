import { describeReadme } from '../helpers/readme-suite';

// README.md's commands that share this lane's Temporal server and a fleet (its rollout is named `web`), and the
// check that every command it shows is known; the demos that start their own stack run in readme-demos.test.ts.
describeReadme('the rest');
