// The task page's elements (templates/rater/task.html), looked up once for all the rater
// modules: the ids are the template's, and the browser tests select them too.

const $ = (id) => document.getElementById(id);

export const ui = {
  stage: $("stage"),
  stageItems: $("stage-items"),
  countdown: $("countdown"),
  status: $("status"),
  feedback: $("feedback"),
  panel: $("panel"),
  panelTitle: $("panel-title"),
  panelBody: $("panel-body"),
  panelButton: $("panel-button"),
  prompt: $("prompt"),
  promptNote: $("prompt-note"),
  fakeButton: $("answer-fake"),
  realButton: $("answer-real"),
  keyFake: $("key-fake"),
  keyReal: $("key-real"),
  progressLabel: $("progress-label"),
  progressTrack: $("progress-track"),
  progressFill: $("progress-fill"),
  progressCount: $("progress-count"),
  connection: $("connection"),
  notice: $("notice"),
};
