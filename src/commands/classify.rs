//! `switchboard classify "text"`: print what the classifier makes of one message.

use crate::nlu::Classification;
use crate::nlu::model::IntentModel;

/// Classifies `text` and prints it, as JSON when asked.
pub fn run(model: &IntentModel, text: &str, json: bool) -> anyhow::Result<()> {
    let c = model
        .classify_batch(&[text])?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no classification"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", render(&c));
    }
    Ok(())
}

fn render(c: &Classification) -> String {
    let mut out = format!(
        "intent:        {}\nconfidence:    {:.3}\nout_of_scope:  {}\nscope_score:   {:.3}\nalternatives:\n",
        c.intent, c.confidence, c.out_of_scope, c.scope_score
    );
    for a in &c.alternatives {
        out.push_str(&format!("  {:<24} {:.3}\n", a.intent, a.confidence));
    }
    out
}
