// Progress of long work (pull, push, pack) as plain events. A CLI draws them as bars on a
// terminal; krd sends them as docker's JSON progress messages. The library never prints.

export interface ProgressEvent {
  /** What the line is about: a short layer id (12 hex chars, like docker) or a step name. */
  id: string;
  /** Docker's wording: "Waiting", "Downloading", "Verifying Checksum", "Download complete",
   *  "Pull complete", "Already exists", "Pushing", "Pushed", "Layer already exists", ... */
  status: string;
  current?: number;
  total?: number;
}

export type ProgressSink = (event: ProgressEvent) => void;

export const noProgress: ProgressSink = () => {};
