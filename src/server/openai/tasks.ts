// How a chat message becomes one of a model's tasks. Iris's models are not chat models:
// they caption, answer and continue. Which of these a message asks for is decided per
// model family, from a table, by the text of the last user message:
//
//   family      tasks                      message text           task
//   vqa         caption, answer, generate  (none)                 caption
//                                          a question             answer
//                                          anything else          generate (a continuation)
//   captioner   caption (+ generate)       (none)                 caption
//                                          anything else          generate (the text is a prefix)
//
// A question ends with '?' or is the model's own answer template filled in (e.g.
// shapes-base's "<question> what color is the square? <answer>"), whose question is used.
import type { Task } from '../../contract/types.ts';
import type { TaskTemplates } from '../../../fusion/prompts.ts';

export type ChatTask =
  | { readonly task: 'caption' }
  | { readonly task: 'answer'; readonly question: string }
  | { readonly task: 'generate'; readonly prompt: string };

export interface ModelTasks {
  readonly tasks: readonly Task[];
  readonly templates?: TaskTemplates;
}

export type FamilyName = 'vqa' | 'captioner';

interface Family {
  /** True when the family serves this model (checked in table order). */
  readonly fits: (model: ModelTasks) => boolean;
  readonly choose: (text: string, model: ModelTasks) => ChatTask;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The question inside text that fills the answer template in, if it does. */
export function matchAnswerTemplate(text: string, template: string | undefined): string | undefined {
  if (!template?.includes('{question}')) return undefined;
  const [before, after] = template.split('{question}').map((s) => escapeRegExp(s.trim()).replace(/\s+/g, '\\s+'));
  const match = new RegExp(`^${before}\\s*(.+?)\\s*${after}$`, 's').exec(text);
  return match?.[1];
}

const FAMILIES: ReadonlyArray<readonly [FamilyName, Family]> = [
  [
    'vqa',
    {
      fits: (model) => model.tasks.includes('answer'),
      choose(text, model) {
        if (text === '') return { task: 'caption' };
        const templated = matchAnswerTemplate(text, model.templates?.answer);
        if (templated !== undefined) return { task: 'answer', question: templated };
        if (text.endsWith('?')) return { task: 'answer', question: text };
        return { task: 'generate', prompt: text };
      },
    },
  ],
  [
    'captioner',
    {
      fits: () => true,
      choose: (text) => (text === '' ? { task: 'caption' } : { task: 'generate', prompt: text }),
    },
  ],
];

export function familyOf(model: ModelTasks): FamilyName {
  return FAMILIES.find(([, family]) => family.fits(model))![0];
}

/** The task a chat message asks of this model (`text`: the last user message, trimmed). */
export function chooseTask(text: string, model: ModelTasks): ChatTask {
  const [, family] = FAMILIES.find(([, f]) => f.fits(model))!;
  return family.choose(text, model);
}
